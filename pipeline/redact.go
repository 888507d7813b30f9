package pipeline

import (
	"github.com/redraft/redraft/rollout"
)

// ScrubPolicy is rollout.ScrubPolicy: it wraps p so that the errors and
// endpoint it returns hold none of secrets (see redact.Secrets) and no URL
// credentials. A configuration's sections get it from
// rollout.EndpointConfig.Dial.
func ScrubPolicy(p rollout.Policy, secrets ...string) rollout.Policy {
	return rollout.ScrubPolicy(p, secrets...)
}
