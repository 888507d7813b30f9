package pipeline

import (
	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/rollout"
)

// ChatMessages converts messages to the rl rows' messages column (OpenAI's
// chat form, tool calls and ids kept).
func ChatMessages(ms []rollout.Message) []export.ChatMessage { return chatMessages(ms) }

// PromptMessages converts messages to the rl rows' prompt column (role and
// content).
func PromptMessages(ms []rollout.Message) []export.Message { return exportMessages(ms) }

// StrPtr is s's address, nil for "" (a null column).
func StrPtr(s string) *string { return strPtr(s) }

// SamplingColumn is the rl rows' sampling column for the settings sent.
func SamplingColumn(sp *rollout.Sampling) *export.Sampling { return exportSampling(sp) }
