// Package envtest is an in-process environment server in the protocol of
// rollout/env (OpenEnv-style POST /reset, /step, /close, GET /state), for
// unit tests and fault injection. Its one game is counting: task "count",
// variation v asks the agent to say 1, 2, ... v+1 ("say 1"); each right
// number earns 1/(v+1), "unsay" takes the last one back for -1/(v+1), any
// other action is invalid. With the oracle it sends the gold path.
//
// A task's options inject faults at a step, so that a run's other episodes
// go on: {"fault": "500" | "hang" | "garbage" | "reset-500", "fault_step": k}
// answers the k-th step (0-based) with HTTP 500, no answer until the client
// gives up, or a body that is not JSON; "reset-500" fails the reset.
package envtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Server is the counting environment.
type Server struct {
	*httptest.Server
	mu       sync.Mutex
	sessions map[string]*game
	maxOpen  int
	opened   int
	closed   int
	steps    int
	// hang is closed when the server shuts down, releasing hung requests.
	hang chan struct{}
}

type game struct {
	goal, n   int
	fault     string
	faultStep int
	steps     int
}

// New starts a server; it is closed when the test ends (via cleanup).
func New(cleanup func(func())) *Server {
	s := &Server{sessions: map[string]*game{}, hang: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	cleanup(func() {
		close(s.hang)
		s.Server.Close()
	})
	return s
}

// Stats reports the sessions opened (resets of new episode ids), closed,
// open now, the most open at once, and the steps taken.
func (s *Server) Stats() (opened, closed, open, maxOpen, steps int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opened, s.closed, len(s.sessions), s.maxOpen, s.steps
}

// Gold is the gold path of variation v.
func Gold(v int) []string {
	out := make([]string, v+1)
	for i := range out {
		out[i] = fmt.Sprintf("say %d", i+1)
	}
	return out
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req struct {
		EpisodeID string         `json:"episode_id"`
		Task      string         `json:"task"`
		Variation int            `json:"variation"`
		Oracle    bool           `json:"oracle"`
		Options   map[string]any `json:"options"`
		Action    struct {
			Text string `json:"text"`
		} `json:"action"`
	}
	json.Unmarshal(body, &req)
	answer := func(code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(v)
	}
	switch r.URL.Path {
	case "/reset":
		if req.Task != "count" {
			answer(http.StatusBadRequest, map[string]any{"detail": fmt.Sprintf("unknown task %q; the tasks are: count", req.Task)})
			return
		}
		g := &game{goal: req.Variation + 1, faultStep: -1}
		if f, ok := req.Options["fault"].(string); ok {
			g.fault = f
			g.faultStep = 0
			if k, ok := req.Options["fault_step"].(float64); ok {
				g.faultStep = int(k)
			}
		}
		if g.fault == "reset-500" {
			answer(http.StatusInternalServerError, map[string]any{"detail": "injected reset failure"})
			return
		}
		s.mu.Lock()
		if _, ok := s.sessions[req.EpisodeID]; !ok {
			s.opened++
		}
		s.sessions[req.EpisodeID] = g
		s.maxOpen = max(s.maxOpen, len(s.sessions))
		s.mu.Unlock()
		obs := map[string]any{"text": fmt.Sprintf("Count from 1 to %d, one number per action.", g.goal),
			"actions": []string{"say NUMBER", "unsay"}, "info": map[string]any{"goal": g.goal}}
		if req.Oracle {
			obs["gold_actions"] = Gold(req.Variation)
		}
		answer(http.StatusOK, map[string]any{"observation": obs, "reward": nil, "done": false})
	case "/step":
		s.mu.Lock()
		g, ok := s.sessions[req.EpisodeID]
		s.steps++
		var fault string
		if ok {
			if g.steps == g.faultStep {
				fault = g.fault
			}
			g.steps++
		}
		s.mu.Unlock()
		if !ok {
			answer(http.StatusNotFound, map[string]any{"detail": "no session " + req.EpisodeID})
			return
		}
		switch fault {
		case "500":
			answer(http.StatusInternalServerError, map[string]any{"detail": "injected step failure"})
			return
		case "hang":
			select {
			case <-r.Context().Done():
			case <-s.hang:
			case <-time.After(time.Minute):
			}
			return
		case "garbage":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"observation": {"text": "half`)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		a := strings.TrimSpace(req.Action.Text)
		step := 1 / float64(g.goal)
		switch {
		case a == fmt.Sprintf("say %d", g.n+1):
			g.n++
			won := g.n == g.goal
			answer(http.StatusOK, map[string]any{"observation": map[string]any{"text": fmt.Sprintf("%d.", g.n), "success": won}, "reward": step, "done": won})
		case a == "unsay" && g.n > 0:
			g.n--
			answer(http.StatusOK, map[string]any{"observation": map[string]any{"text": fmt.Sprintf("Back to %d.", g.n), "success": false}, "reward": -step, "done": false})
		default:
			answer(http.StatusOK, map[string]any{"observation": map[string]any{"text": "Nothing happens.", "invalid_action": true, "success": false}, "reward": 0.0, "done": false})
		}
	case "/state":
		id := r.URL.Query().Get("episode_id")
		s.mu.Lock()
		g := s.sessions[id]
		s.mu.Unlock()
		n := 0
		if g != nil {
			n = g.n
		}
		answer(http.StatusOK, map[string]any{"episode_id": id, "count": n})
	case "/close":
		s.mu.Lock()
		_, ok := s.sessions[req.EpisodeID]
		if ok {
			s.closed++
		}
		delete(s.sessions, req.EpisodeID)
		s.mu.Unlock()
		answer(http.StatusOK, map[string]any{"episode_id": req.EpisodeID, "closed": ok})
	default:
		answer(http.StatusNotFound, map[string]any{"detail": "no such path"})
	}
}
