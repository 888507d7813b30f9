package pipeline

import (
	"errors"
	"fmt"
	"math"

	"github.com/redraft/redraft/rewards"
	"github.com/redraft/redraft/rollout"
)

// The settings of a component are declared beside it: an endpoint section
// is a rollout.EndpointConfig (with its defaults, checks and fleet), a
// reward component is an entry of rewards.Components (its settings' key,
// defaults, checks and Part). This file applies them to a configuration's
// sections; config.go holds the schema, loading, the rules across sections
// and the run's identity.

// helper is a helper model's endpoint section, by its key.
type helper struct {
	key string
	ep  *rollout.EndpointConfig
}

// helpers lists the helper models' endpoint sections: the judges, the
// critic and the Agent-R step judge. They get rollout.HelperDefaults.
func (c *Config) helpers() []helper {
	var out []helper
	for i := range c.Reward.Judges {
		out = append(out, helper{fmt.Sprintf("reward.judges[%d]", i), &c.Reward.Judges[i].EndpointConfig})
	}
	if cr := c.Critique; cr != nil && cr.Critic != nil {
		out = append(out, helper{"critique.critic", cr.Critic})
	}
	if a := c.AgentR; a != nil && a.StepJudge != nil {
		out = append(out, helper{"agent_r.step_judge", a.StepJudge})
	}
	if e := c.Environment; e != nil && e.Reflector != nil {
		out = append(out, helper{"environment.reflector", e.Reflector})
	}
	return out
}

// under reports, for a component's defaults, whether the file sets a key of
// section ("timeout" of "reward.judges[0]").
func (k keyLines) under(section string) func(key string) bool {
	return func(key string) bool { return k.has(section + "." + key) }
}

// keyed gives an error about one setting from a component's own checks (a
// *rollout.KeyError, a *rewards.SettingError) the key ParseConfig finds its
// line by; its message is kept as it is.
func keyed(err error) error {
	var ke *rollout.KeyError
	var se *rewards.SettingError
	switch {
	case errors.As(err, &ke):
		return atKey(ke.Line(), err)
	case errors.As(err, &se):
		return atKey("reward."+se.Key, err)
	}
	return err
}

// settings gathers the components' settings.
func (r *RewardConfig) settings() rewards.Settings {
	return rewards.Settings{Format: r.Format, ScoreBonus: r.ScoreBonus, SRPO: r.SRPO, SelfVerify: r.SelfVerify, Overlong: r.Overlong}
}

// Parts returns the reward parts the weights ask for, in a fixed order
// (rewards.Components'); the judge panel is built apart (see buildJudges).
func (r RewardConfig) Parts(g rewards.Grader) []rewards.Part {
	return rewards.Parts(r.Weights, r.settings(), g)
}

// defaults fills the settings of the weighted components that the file
// leaves out (set holds the keys it sets).
func (r *RewardConfig) defaults(set keyLines) {
	s := r.settings()
	for _, c := range rewards.Components {
		if _, ok := r.Weights[c.Name]; ok && c.Defaults != nil {
			c.Defaults(&s, set.under("reward"))
		}
	}
	r.Format, r.ScoreBonus, r.SRPO, r.SelfVerify, r.Overlong = s.Format, s.ScoreBonus, s.SRPO, s.SelfVerify, s.Overlong
}

// validateWeights refuses an unknown component or a weight that is not a
// number, and checks the settings of each weighted component.
func (r *RewardConfig) validateWeights() error {
	s := r.settings()
	for name, w := range r.Weights {
		c, ok := rewards.ComponentByName(name)
		if !ok {
			return keyErr("reward.weights", "unknown component %q (want %s)", name, rewards.ComponentNames())
		}
		if c.Validate != nil {
			if err := c.Validate(s); err != nil {
				return keyed(err)
			}
		}
		if math.IsNaN(w) || math.IsInf(w, 0) {
			return keyErr("reward.weights."+name, "not a finite number")
		}
	}
	return nil
}
