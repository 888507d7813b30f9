package pipeline

import (
	"strings"
	"unicode/utf8"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/rollout"
)

// Segment roles in a trajectory: what a span of text is in the recipe.
const (
	SegPrompt        = "prompt"
	SegAttempt       = "attempt"
	SegFeedback      = "feedback"
	SegCritique      = "critique"
	SegPrefix        = "prefix"
	SegErroneousStep = "erroneous_step"
	SegReflection    = "reflection"
	SegRevision      = "revision" // Agent-R's revision thought
	SegCorrection    = "correction"
	SegContinuation  = "continuation"
	SegSeparator     = "separator"
	SegThought       = "thought"
	SegAnswer        = "answer"
)

// Segment is a span of a message with its role in the recipe and whether
// the model is trained on it.
type Segment struct {
	Text      string
	Role      string
	Trainable bool
}

// TMessage is one message of a trajectory, made of segments. Its content is
// the concatenation of the segments' texts.
type TMessage struct {
	Role     string
	Segments []Segment
	// ToolCalls, ToolCallID and Name are an agent's tool calls (on an
	// assistant message) and the call a tool message answers, as in
	// rollout.Message; the tool calls are trained with the message.
	ToolCalls  []rollout.ToolCall
	ToolCallID string
	Name       string
}

// Content returns the message text.
func (m TMessage) Content() string {
	var b strings.Builder
	for _, s := range m.Segments {
		b.WriteString(s.Text)
	}
	return b.String()
}

// Trainable reports whether any segment is trained.
func (m TMessage) Trainable() bool {
	for _, s := range m.Segments {
		if s.Trainable && s.Text != "" {
			return true
		}
	}
	return false
}

// Span is a segment's position in its message's content, in Unicode code
// points (so that Python's content[start:end] is the segment text).
type Span struct {
	Role       string
	Start, End int
	Trainable  bool
}

// Spans returns each segment's span in the message content.
func (m TMessage) Spans() []Span {
	out := make([]Span, len(m.Segments))
	pos := 0
	for i, s := range m.Segments {
		n := utf8.RuneCountInString(s.Text)
		out[i] = Span{Role: s.Role, Start: pos, End: pos + n, Trainable: s.Trainable}
		pos += n
	}
	return out
}

// Trajectory is one training example of a recipe: messages made of
// segments, with the reward that selected it.
type Trajectory struct {
	ID         string
	TaskID     string
	Recipe     string
	DataSource string
	Messages   []TMessage
	// Reward is the trajectory's reward when the recipe has one.
	Reward *float64
	// Metadata is JSON text describing where the trajectory came from.
	Metadata string
}

// Text is a plain (untrained or trained) message of one segment.
func Text(role, segRole, text string, trainable bool) TMessage {
	return TMessage{Role: role, Segments: []Segment{{Text: text, Role: segRole, Trainable: trainable}}}
}

// SFTRow converts a trajectory to an sft row.
func (t *Trajectory) SFTRow() export.SFTRow {
	row := export.SFTRow{ID: t.ID, TaskID: t.TaskID, Recipe: t.Recipe, DataSource: t.DataSource, Reward: t.Reward, Metadata: strPtr(t.Metadata)}
	row.Messages = make([]export.SFTMessage, len(t.Messages))
	for i, m := range t.Messages {
		msg := export.SFTMessage{Role: m.Role, Content: m.Content()}
		if len(m.ToolCalls) > 0 || m.ToolCallID != "" || m.Name != "" {
			c := chatMessage(rollout.Message{ToolCalls: m.ToolCalls, ToolCallID: m.ToolCallID, Name: m.Name})
			msg.ToolCalls, msg.ToolCallID, msg.Name = c.ToolCalls, c.ToolCallID, c.Name
		}
		if m.Trainable() || (len(m.ToolCalls) > 0 && len(m.Segments) > 0 && m.Segments[0].Trainable) {
			msg.LossMask = 1
		}
		for _, sp := range m.Spans() {
			msg.Segments = append(msg.Segments, export.SFTSpan{Role: sp.Role, Start: int32(sp.Start), End: int32(sp.End), Trainable: sp.Trainable})
		}
		row.Messages[i] = msg
	}
	return row
}
