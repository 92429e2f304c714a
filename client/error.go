package client

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Error is a non-2xx answer from a node, decoded from its ErrorBody. Callers
// tell cases apart by Status: 503 is too few replicas (Body.Need and
// Body.Got say how many), 401 a missing or wrong token, 403 a token whose
// role does not allow the request, 4xx a bad request whose message names
// the limit.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Body is the node's explanation.
	Body ErrorBody
}

// Error is the node's message, with the replicas a quorum failure names.
func (e *Error) Error() string {
	msg := e.Body.Error
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	switch e.Status {
	case http.StatusUnauthorized:
		return "not authorised: the node wants a valid token: " + msg
	case http.StatusForbidden:
		return "refused: " + msg
	}
	if e.Body.Need > 0 && e.Body.Got != nil && !strings.Contains(msg, "need") {
		msg += fmt.Sprintf(" (need %d, got %d)", e.Body.Need, *e.Body.Got)
	}
	return msg + e.failures(msg)
}

// failures lists, sorted by replica, the causes the message does not
// already name.
func (e *Error) failures(msg string) string {
	names := make([]string, 0, len(e.Body.Failures))
	for n := range e.Body.Failures {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		if p := n + ": " + e.Body.Failures[n]; !strings.Contains(msg, p) {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "; " + strings.Join(parts, "; ")
}

// excerpt is the start of body as text for an error message: at most limit
// bytes, cut on a character boundary, invalid UTF-8 and control characters
// (which a terminal would act on) shown as U+FFFD.
func excerpt(body []byte, limit int) string {
	text := strings.TrimSpace(string(body))
	cut := len(text) > limit
	if cut {
		i := limit
		for i > 0 && !utf8.RuneStart(text[i]) {
			i--
		}
		text = text[:i]
	}
	text = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return utf8.RuneError
		}
		return r
	}, strings.ToValidUTF8(text, string(utf8.RuneError)))
	if cut {
		text += "..."
	}
	return text
}

// asError turns a non-success answer into an *Error.
func (r *response) asError() error {
	e := &Error{Status: r.status}
	if err := json.Unmarshal(r.body, &e.Body); err != nil || e.Body.Error == "" {
		// Not one of ours (a proxy, or a route that does not exist):
		// show the start of what came back.
		text := excerpt(r.body, 200)
		e.Body = ErrorBody{Error: fmt.Sprintf("HTTP %d %s", r.status, http.StatusText(r.status))}
		if text != "" {
			e.Body.Error += ": " + text
		}
	}
	return e
}
