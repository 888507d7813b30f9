package rollout

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
)

// Continuation modes: how a model is asked to go on from a partial
// assistant message.
const (
	// ContinuePrefill sends the partial message as the final assistant
	// message with continue_final_message (vLLM; SGLang and llama-server
	// continue a final assistant message too), so the response is the text
	// that follows it in the same turn.
	ContinuePrefill = "prefill"
	// ContinueUserTurn sends the partial message as a finished assistant
	// turn followed by a user turn asking to continue (any server).
	ContinueUserTurn = "user-turn"
	// ContinueAuto tries prefill and falls back to a user turn when the
	// server answers 400 to it; after a fallback whose user-turn request
	// succeeded, it sends user turns only.
	ContinueAuto = "auto"
	// ContinueFresh is the mode recorded when the partial message is empty:
	// there is nothing to continue, so the task's messages are sent as they
	// are (a new sample from the root).
	ContinueFresh = "fresh"
)

// DefaultContinueInstruction is the user turn of ContinueUserTurn.
const DefaultContinueInstruction = "Continue the solution from where it stops. Do not repeat the text above: write only what comes next, and end with the final answer."

// ValidContinueMode reports whether mode is prefill, user-turn or auto.
func ValidContinueMode(mode string) bool {
	return mode == ContinuePrefill || mode == ContinueUserTurn || mode == ContinueAuto
}

// Continuer asks a Policy to continue partial assistant messages. It is safe
// for concurrent use.
type Continuer struct {
	Policy Policy
	// Mode is ContinuePrefill, ContinueUserTurn or ContinueAuto ("": auto).
	Mode string
	// Instruction is the user turn of ContinueUserTurn ("":
	// DefaultContinueInstruction).
	Instruction string

	mu sync.Mutex
	// noPrefill is set in auto mode once a prefill request was refused with
	// a 400 and the same request succeeded as a user turn; noPrefillWhy is
	// that 400's message.
	noPrefill    bool
	noPrefillWhy string
}

// Continuation is one continued message: the response, and exactly how it
// was asked for.
type Continuation struct {
	// Text is the continuation: the text that follows the prefix.
	Text string
	// EchoedPrefix is true when the server returned the prefix followed by
	// the continuation (llama-server does this for a final assistant
	// message) and the prefix was cut from Text.
	EchoedPrefix bool
	// Response is the server's answer as it came.
	Response Response
	// Mode is the mode of the request that produced Response: prefill,
	// user-turn or fresh.
	Mode string
	// Messages are the exact messages of that request; ContinueFinal says
	// whether it carried continue_final_message.
	Messages      []Message
	ContinueFinal bool
	// Fallback, in auto mode, is why prefill was not used: the message of
	// the 400 that refused it (this request's or an earlier one's).
	Fallback string
}

// Continue asks for the text that follows prefix, the partial assistant
// message answering prompt. The prefix, seed and sampling settings are sent
// exactly as given: a prefix that ends a step should end with its line
// break, or the model may go on with the same line (transformers keeps a
// final message's trailing whitespace when the chat template does). A
// prefix that is only whitespace is not continued: prompt alone is sent
// (mode fresh).
func (c *Continuer) Continue(ctx context.Context, prompt []Message, prefix string, sampling Sampling, seed int64) (Continuation, error) {
	if strings.TrimSpace(prefix) == "" {
		msgs := append([]Message(nil), prompt...)
		resp, err := c.Policy.Sample(ctx, Request{Messages: msgs, Sampling: sampling, Seed: seed})
		if err != nil {
			err = fmt.Errorf("continuation (%s): %w", ContinueFresh, err)
		}
		return Continuation{Text: resp.Text, Response: resp, Mode: ContinueFresh, Messages: msgs}, err
	}
	mode := c.Mode
	if mode == "" {
		mode = ContinueAuto
	}
	var fallback string
	if mode == ContinueAuto {
		c.mu.Lock()
		if c.noPrefill {
			mode, fallback = ContinueUserTurn, c.noPrefillWhy
		}
		c.mu.Unlock()
	}
	switch mode {
	case ContinuePrefill, ContinueUserTurn:
		out, err := c.send(ctx, mode, prompt, prefix, sampling, seed)
		out.Fallback = fallback
		return out, err
	case ContinueAuto:
		out, err := c.send(ctx, ContinuePrefill, prompt, prefix, sampling, seed)
		if err == nil || HTTPStatus(err) != http.StatusBadRequest {
			return out, err
		}
		why := err.Error()
		out, err = c.send(ctx, ContinueUserTurn, prompt, prefix, sampling, seed)
		out.Fallback = why
		if err == nil {
			// Only a 400 that a user turn then avoided says the server
			// lacks prefill; a 400 for another cause (a prompt too long)
			// fails both and must not switch later requests.
			c.mu.Lock()
			if !c.noPrefill {
				c.noPrefill, c.noPrefillWhy = true, why
			}
			c.mu.Unlock()
		}
		return out, err
	}
	return Continuation{}, fmt.Errorf("continuation mode %q: want prefill, user-turn or auto", mode)
}

// send makes one continuation request in a fixed mode.
func (c *Continuer) send(ctx context.Context, mode string, prompt []Message, prefix string, sampling Sampling, seed int64) (Continuation, error) {
	msgs := make([]Message, 0, len(prompt)+2)
	msgs = append(msgs, prompt...)
	msgs = append(msgs, Message{Role: "assistant", Content: prefix})
	prefill := mode == ContinuePrefill
	if !prefill {
		instr := c.Instruction
		if instr == "" {
			instr = DefaultContinueInstruction
		}
		msgs = append(msgs, Message{Role: "user", Content: instr})
	}
	resp, err := c.Policy.Sample(ctx, Request{Messages: msgs, Sampling: sampling, Seed: seed, ContinueFinal: prefill})
	out := Continuation{Text: resp.Text, Response: resp, Mode: mode, Messages: msgs, ContinueFinal: prefill}
	if err != nil {
		return out, fmt.Errorf("continuation (%s): %w", mode, err)
	}
	if prefill {
		// vLLM returns only the new text; llama-server prefills any final
		// assistant message and returns it with the new text after it,
		// without the trailing whitespace when its template trims it.
		for _, p := range []string{prefix, strings.TrimRight(prefix, " \t\r\n")} {
			if rest, ok := strings.CutPrefix(resp.Text, p); ok && p != "" {
				out.Text, out.EchoedPrefix = rest, true
				break
			}
		}
	}
	return out, nil
}

// PrefillDisabled reports whether auto mode has switched to user turns, and
// the 400 that made it.
func (c *Continuer) PrefillDisabled() (bool, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.noPrefill, c.noPrefillWhy
}
