// Package httpclient holds what the Go client and the CLI's own HTTP
// callers (health, k8s-zone, bench) share about net/http's client: not
// following redirects, and error text without url.Error's repetition.
package httpclient

import (
	"errors"
	"net/http"
	"net/url"
)

// NoRedirect is an http.Client CheckRedirect that follows no redirect:
// the 3xx comes back as the answer. Following one would carry a request,
// and its token, to wherever Location points, and turn a write into a GET.
func NoRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// URLCause drops url.Error's "Get "http://...": " prefix from an error of
// http.Client.Do, which only repeats what the caller already says.
func URLCause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
