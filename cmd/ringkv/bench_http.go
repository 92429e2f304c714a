package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ringkv/ringkv/internal/httpclient"
)

// benchMaxAnswerBytes bounds what a driver reads of one answer: the largest
// value (1 MiB by default) as siblings in base64 JSON, with room to spare.
const benchMaxAnswerBytes = 64 << 20

// benchDriver is one client's connection to one node. A driver is used by
// one goroutine at a time. Failures are *benchError; an operation whose ctx
// was cancelled returns some error that the caller discards.
type benchDriver interface {
	// read fetches key; found is false when the node has no live value.
	read(ctx context.Context, key string) (found bool, err error)
	// update writes value under key without a causal context (a blind write).
	update(ctx context.Context, key string, value []byte) error
	close()
}

// httpDriver speaks docs/http-api.md over one keep-alive connection.
type httpDriver struct {
	hc      *http.Client
	tr      *http.Transport
	base    string // "http://host:port/v1/kv/"
	rQuery  string // "?r=..." or ""
	wQuery  string
	timeout time.Duration
	token   string // sent as a bearer when not empty
}

var _ benchDriver = (*httpDriver)(nil)

func newHTTPDriver(addr, r, w string, timeout time.Duration) *httpDriver {
	tr := &http.Transport{
		Proxy:                  nil, // a load generator measures the node, never a proxy
		DialContext:            (&net.Dialer{Timeout: timeout}).DialContext,
		MaxConnsPerHost:        1,
		MaxIdleConnsPerHost:    1,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 64 << 10,
		IdleConnTimeout:        90 * time.Second,
	}
	d := &httpDriver{
		hc:      &http.Client{Transport: tr},
		tr:      tr,
		base:    httpBase(addr) + "/v1/kv/",
		timeout: timeout,
	}
	if r != "" {
		d.rQuery = "?r=" + url.QueryEscape(r)
	}
	if w != "" {
		d.wQuery = "?w=" + url.QueryEscape(w)
	}
	return d
}

// httpBase turns host:port or http://host:port into a URL without a
// trailing slash; the flag was validated by parseBenchNodes.
func httpBase(addr string) string {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return strings.TrimSuffix(addr, "/")
}

func (d *httpDriver) read(ctx context.Context, key string) (bool, error) {
	status, err := d.do(ctx, http.MethodGet, d.base+url.PathEscape(key)+d.rQuery, nil)
	if err != nil {
		return false, err
	}
	switch status {
	case http.StatusOK, http.StatusMultipleChoices:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, statusError(status)
}

func (d *httpDriver) update(ctx context.Context, key string, value []byte) error {
	status, err := d.do(ctx, http.MethodPut, d.base+url.PathEscape(key)+d.wQuery, value)
	if err != nil {
		return err
	}
	switch status {
	case http.StatusNoContent, http.StatusOK, http.StatusMultipleChoices:
		return nil
	}
	return statusError(status)
}

func statusError(status int) error {
	kind := errOther
	if status == http.StatusServiceUnavailable {
		kind = errQuorum
	}
	return &benchError{kind: kind, err: fmt.Errorf("HTTP %d %s", status, http.StatusText(status))}
}

// do sends one request and drains the answer, so that the connection is
// reused; it returns the status.
func (d *httpDriver) do(ctx context.Context, method, u string, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, &benchError{kind: errOther, err: err}
	}
	if d.token != "" {
		req.Header.Set("Authorization", "Bearer "+d.token)
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		return 0, classifyNetErr(httpclient.URLCause(err))
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, io.LimitReader(resp.Body, benchMaxAnswerBytes+1))
	if err != nil {
		return 0, classifyNetErr(err)
	}
	if n > benchMaxAnswerBytes {
		return 0, &benchError{kind: errOther, err: fmt.Errorf("answer larger than %d bytes", benchMaxAnswerBytes)}
	}
	return resp.StatusCode, nil
}

func (d *httpDriver) close() { d.tr.CloseIdleConnections() }
