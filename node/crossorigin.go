package node

import (
	"net/http"

	"github.com/ringkv/ringkv/client"
)

// crossSiteText is the answer to a state-changing request a browser sent
// from a page of another origin.
const crossSiteText = "cross-origin request refused: a page of another site may not change this node's data or ring " +
	"(the browser sent Sec-Fetch-Site or Origin naming another origin); use the CLI, curl or the node's own console"

// crossOrigin wraps h so that a browser's PUT, POST or DELETE sent by a
// page of another origin is refused with 403 before any route runs. It
// matters most without tokens: nothing else would keep a web page the
// operator visits from posting a form to /v1/leave on a node at
// 127.0.0.1. Browsers say where a request comes from (Sec-Fetch-Site,
// else Origin compared with Host); requests without those headers, from
// the CLI, curl or client libraries, pass, as do GET, HEAD and OPTIONS.
func (a *httpAPI) crossOrigin(h http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.gate != nil {
			a.gate.refused("http", refuseCrossSite, r.RemoteAddr, "")
		}
		writeError(w, http.StatusForbidden, client.ErrorBody{Error: crossSiteText})
	}))
	return cop.Handler(h)
}
