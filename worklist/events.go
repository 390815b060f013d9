package worklist

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// hub fans changes out to the open pages. A page that cannot keep up is
// dropped rather than buffered without bound; its browser reconnects and
// fetches the rows afresh.
type hub struct {
	mu   sync.Mutex
	subs map[chan []byte]struct{}
}

const (
	subBuffer = 256
	// maxSubs bounds the open event streams (and so their buffers).
	maxSubs = 512
)

func newHub() *hub { return &hub{subs: map[chan []byte]struct{}{}} }

func (h *hub) subscribe() (chan []byte, func()) {
	ch := make(chan []byte, subBuffer)
	h.mu.Lock()
	if len(h.subs) >= maxSubs {
		h.mu.Unlock()
		return nil, nil
	}
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		if _, ok := h.subs[ch]; ok {
			delete(h.subs, ch)
			close(ch)
		}
		h.mu.Unlock()
	}
}

func (h *hub) empty() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs) == 0
}

func (h *hub) send(msg []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- msg:
		default:
			delete(h.subs, ch)
			close(ch)
		}
	}
}

// sse formats one event; the data is single-line JSON.
func sse(event string, v any) []byte {
	b, _ := json.Marshal(v)
	out := append([]byte("event: "+event+"\ndata: "), b...)
	return append(out, '\n', '\n')
}

const heartbeat = 15 * time.Second

// handleEvents streams changes to one page until it leaves or the server
// stops (the request's context derives from Serve's).
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	ch, unsubscribe := s.hub.subscribe()
	if ch == nil {
		w.Header().Set("Retry-After", "30")
		http.Error(w, "too many open pages", http.StatusServiceUnavailable)
		return
	}
	defer unsubscribe()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	c := s.ix.tally()
	w.Write([]byte("retry: 2000\n\n"))
	w.Write(sse("hello", map[string]any{"ready": s.ready.Load(), "uc": c.UnackedCritical, "na": c.NotAssessable}))
	if rc.Flush() != nil {
		return
	}
	t := time.NewTicker(heartbeat)
	defer t.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case msg, ok := <-ch:
			if !ok {
				return // too slow: the browser reconnects and resynchronises
			}
			rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := w.Write(msg); err != nil {
				return
			}
		case <-t.C:
			rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := w.Write([]byte(": keep-alive\n\n")); err != nil {
				return
			}
		}
		if rc.Flush() != nil {
			return
		}
	}
}
