package node

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"

	"github.com/ringkv/ringkv/client"
	"github.com/ringkv/ringkv/ring"
)

// The admin routes: membership, ring inspection and ring changes. They sit
// on adminBackend so that their status mapping is tested without gossip.

// members serves GET /v1/members.
func (a *httpAPI) members(w http.ResponseWriter, _ *http.Request) {
	ms := a.admin.Members()
	if ms == nil {
		ms = []client.Member{}
	}
	writeJSON(w, http.StatusOK, ms)
}

// stats serves GET /v1/stats.
func (a *httpAPI) stats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.admin.LocalStats())
}

// aaeStatus serves GET /v1/aae: this node's anti-entropy state per
// partition (an empty list when anti-entropy is off).
func (a *httpAPI) aaeStatus(w http.ResponseWriter, _ *http.Request) {
	st := a.admin.AAE()
	if st == nil {
		st = []client.AAEPartition{}
	}
	writeJSON(w, http.StatusOK, st)
}

// ring serves GET /v1/ring, /v1/ring?key=K and /v1/ring?what_if=op:NAME.
func (a *httpAPI) ring(w http.ResponseWriter, r *http.Request) {
	vals, err := queryParams(r, "key", "what_if", "zone")
	if err != nil {
		writeError(w, http.StatusBadRequest, client.ErrorBody{Error: err.Error()})
		return
	}
	if vals.Has("key") && vals.Has("what_if") {
		writeError(w, http.StatusBadRequest, client.ErrorBody{Error: "give either key or what_if, not both"})
		return
	}
	key := []byte(vals.Get("key"))
	op, name := "", ""
	if vals.Has("key") {
		err = checkKey(key, a.limits)
	} else if vals.Has("what_if") {
		op, name, err = parseWhatIf(vals.Get("what_if"))
	}
	zone := ""
	if err == nil {
		zone, err = whatIfZone(vals, op)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, client.ErrorBody{Error: err.Error()})
		return
	}
	switch {
	case vals.Has("key"):
		writeJSON(w, http.StatusOK, a.admin.Placement(key))
	case op != "":
		v, err := a.admin.WhatIf(op, name, zone)
		if err != nil {
			a.adminError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	default:
		writeJSON(w, http.StatusOK, a.admin.Ring(r.Context()))
	}
}

// whatIfZone is the zone parameter of GET /v1/ring, which goes with
// what_if=add:NAME (op "add") only; "" when not given.
func whatIfZone(vals url.Values, op string) (string, error) {
	if !vals.Has("zone") {
		return "", nil
	}
	if op != "add" {
		return "", errors.New("zone goes with what_if=add:NAME only")
	}
	zone := vals.Get("zone")
	return zone, ring.ValidZone(zone)
}

// leave serves POST /v1/leave.
func (a *httpAPI) leave(w http.ResponseWriter, r *http.Request) {
	if err := a.admin.Leave(r.Context()); err != nil {
		a.adminError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, client.OKBody{OK: true, Message: "this node is leaving: it hands its partitions to their new replicas, then leaves the ring and stops"})
}

// remove serves POST /v1/remove/{node}.
func (a *httpAPI) remove(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("node")
	if err := a.admin.Remove(r.Context(), name); err != nil {
		a.adminError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, client.OKBody{OK: true, Message: name + " removed from the ring"})
}

// transferRate serves PUT /v1/transfer/rate?mb=X: this node's transfer
// rate limit in MB/s (0 removes it), until the next restart.
func (a *httpAPI) transferRate(w http.ResponseWriter, r *http.Request) {
	vals, err := queryParams(r, "mb")
	if err != nil {
		writeError(w, http.StatusBadRequest, client.ErrorBody{Error: err.Error()})
		return
	}
	mb, err := strconv.ParseFloat(vals.Get("mb"), 64)
	if err != nil || math.IsNaN(mb) || mb < 0 || mb > maxTransferRateMB {
		writeError(w, http.StatusBadRequest, client.ErrorBody{Error: fmt.Sprintf("mb must be a number of MB/s between 0 (no limit) and %d, got %q", maxTransferRateMB, vals.Get("mb"))})
		return
	}
	a.admin.SetTransferRate(mb)
	writeJSON(w, http.StatusOK, client.OKBody{OK: true, Message: fmt.Sprintf("transfer rate set to %g MB/s on this node", mb)})
}

// adminError maps admin backend errors to statuses.
func (a *httpAPI) adminError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, errNotFound):
		writeError(w, http.StatusNotFound, client.ErrorBody{Error: err.Error()})
	case errors.Is(err, errBadRequest):
		writeError(w, http.StatusBadRequest, client.ErrorBody{Error: err.Error()})
	default:
		a.log.Error("admin request failed", "err", err)
		writeError(w, http.StatusInternalServerError, client.ErrorBody{Error: err.Error()})
	}
}
