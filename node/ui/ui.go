// Package ui holds the operator's web console: static HTML, CSS and plain
// JavaScript, embedded in the binary so that every node serves it with no
// build step and nothing fetched from elsewhere. The console reads the
// node's JSON API from the browser; it has no server-side state.
package ui

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// contentPolicy keeps the console to its own files: no inline script, no
// other origin, and no framing (leave and remove are one click away, so
// another site must not be able to lay the page under its own).
const contentPolicy = "default-src 'self'; img-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// Handler serves the console's files under prefix (for example "/ui/").
func Handler(prefix string) http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		// The embedded tree is fixed at build time: "static" always exists.
		panic("ui: embedded static files missing: " + err.Error())
	}
	files := http.StripPrefix(prefix, http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentPolicy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// The files change only with the binary; a short cache keeps an
		// upgraded node from serving an old script for long.
		h.Set("Cache-Control", "max-age=60")
		files.ServeHTTP(w, r)
	})
}
