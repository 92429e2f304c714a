package httpclient

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

func TestNoRedirect(t *testing.T) {
	srv := httptest.NewServer(http.RedirectHandler("/elsewhere", http.StatusFound))
	defer srv.Close()
	c := &http.Client{CheckRedirect: NoRedirect}
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Errorf("status %d, want the 302 itself", resp.StatusCode)
	}
}

func TestURLCause(t *testing.T) {
	cause := errors.New("connection refused")
	if got := URLCause(&url.Error{Op: "Get", URL: "http://x", Err: cause}); got != cause {
		t.Errorf("URLCause(url.Error) = %v, want the cause", got)
	}
	if got := URLCause(cause); got != cause {
		t.Errorf("URLCause(plain) = %v, want it unchanged", got)
	}
}
