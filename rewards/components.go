package rewards

import (
	"fmt"
	"math"
	"strings"
)

// ComponentSpec declares one reward component: the name a configuration
// weights it by, the key of its settings, their defaults and checks, and how
// its Part is built. Components is the table of them; a configuration's
// reward section, its validation and the parts a run scores with all come
// from it.
type ComponentSpec struct {
	// Name is the component's key in reward.weights and its name on rows.
	Name string
	// Settings is the key, in the reward section, of the settings that
	// configure it ("" when none).
	Settings string
	// Defaults fills the settings a weighted component's configuration
	// leaves out; set reports whether the configuration sets a key of the
	// reward section ("srpo.flip_bonus"). Nil: nothing to fill.
	Defaults func(s *Settings, set func(key string) bool)
	// Validate checks a weighted component's settings; its error is a
	// *SettingError. Nil: nothing to check.
	Validate func(s Settings) error
	// New builds the component's Part. Several components may share one
	// Part (self_verify_gen and self_verify_match: one Part writes both);
	// nil when the caller builds it (judge: a panel of models, see
	// package judge).
	New func(s Settings, g Grader) Part
}

// Settings are the settings of the components that have some, each under
// its key of the reward section (ComponentSpec.Settings).
type Settings struct {
	Format     Format
	ScoreBonus ScoreShaping
	SRPO       SRPOReflection
	SelfVerify SelfVerify
	Overlong   Overlong
}

// Components is every reward component, in the order their Parts run (and
// their components appear on a row).
var Components = []ComponentSpec{
	{Name: "verifiable", New: func(Settings, Grader) Part { return Verifiable{} }},
	{Name: "pass_rate", New: func(Settings, Grader) Part { return PassRate{} }},
	{Name: "consensus", New: func(_ Settings, g Grader) Part { return Consensus{Grader: g} }},
	{Name: "format", Settings: "format", New: func(s Settings, _ Grader) Part { return s.Format }},
	{Name: "recorded", New: func(Settings, Grader) Part { return Recorded{} }},
	{
		Name: "overlong", Settings: "overlong",
		Validate: func(s Settings) error { return s.Overlong.Validate() },
		New:      func(s Settings, _ Grader) Part { return s.Overlong },
	},
	{
		Name: "score_bonus", Settings: "score_bonus",
		Defaults: func(s *Settings, set func(string) bool) {
			if !set("score_bonus.alpha") {
				s.ScoreBonus.Alpha = DefaultScoreAlpha
			}
		},
		Validate: func(s Settings) error { return finite("score_bonus.alpha", s.ScoreBonus.Alpha) },
		New:      func(s Settings, _ Grader) Part { return s.ScoreBonus },
	},
	{
		Name: "srpo", Settings: "srpo",
		Defaults: func(s *Settings, set func(string) bool) {
			if !set("srpo.flip_bonus") {
				s.SRPO.FlipBonus = DefaultSRPOFlipBonus
			}
		},
		Validate: func(s Settings) error {
			p := s.SRPO
			if err := finite("srpo.flip_bonus", p.FlipBonus); err != nil {
				return err
			}
			if err := finite("srpo.length_weight", p.LengthWeight); err != nil {
				return err
			}
			if p.LengthWeight != 0 && p.LengthTarget < 1 {
				return settingErr("srpo.length_target", "must be at least 1 when length_weight is set")
			}
			return nil
		},
		New: func(s Settings, _ Grader) Part { return s.SRPO },
	},
	selfVerifySpec(SelfVerifyGen),
	selfVerifySpec(SelfVerifyMatch),
	{Name: "judge"},
}

// Defaults of the components' settings.
const (
	DefaultScoreAlpha    = 10  // SCoRe's alpha
	DefaultSRPOFlipBonus = 0.5 // SRPO's bonus for a wrong->right revision
)

// selfVerifySpec is self_verify_gen's or self_verify_match's entry: both
// are written by one SelfVerify part, configured by reward.self_verify.
func selfVerifySpec(name string) ComponentSpec {
	return ComponentSpec{
		Name: name, Settings: "self_verify",
		Defaults: func(s *Settings, set func(string) bool) {
			if !set("self_verify.verdict") {
				s.SelfVerify.Verdict = VerdictLabel
			}
		},
		Validate: func(s Settings) error {
			if v := s.SelfVerify.Verdict; v != VerdictLabel && v != VerdictScore {
				return settingErr("self_verify.verdict", "%q is neither label nor score", v)
			}
			return nil
		},
		New: func(s Settings, g Grader) Part {
			p := s.SelfVerify
			p.Grader = g
			return p
		},
	}
}

// ComponentByName returns the spec of the component called name.
func ComponentByName(name string) (ComponentSpec, bool) {
	for _, c := range Components {
		if c.Name == name {
			return c, true
		}
	}
	return ComponentSpec{}, false
}

// ComponentNames lists the components' names for messages: "a, b or c".
func ComponentNames() string {
	names := make([]string, len(Components))
	for i, c := range Components {
		names[i] = c.Name
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// Parts builds the Parts of the weighted components (a component is
// computed when it has a weight, even 0), in the table's order. Components
// without a constructor (judge) are left to the caller.
func Parts(weights map[string]float64, s Settings, g Grader) []Part {
	var parts []Part
	built := map[string]bool{}
	for _, c := range Components {
		if _, ok := weights[c.Name]; !ok || c.New == nil {
			continue
		}
		p := c.New(s, g)
		if built[p.Name()] {
			continue // a part that writes several components
		}
		built[p.Name()] = true
		parts = append(parts, p)
	}
	return parts
}

// SettingError is a problem with one component setting, by its key under
// the reward section (srpo.length_target).
type SettingError struct {
	Key string
	Err error
}

func (e *SettingError) Error() string { return "reward." + e.Key + ": " + e.Err.Error() }
func (e *SettingError) Unwrap() error { return e.Err }

func settingErr(key, format string, args ...any) error {
	return &SettingError{Key: key, Err: fmt.Errorf(format, args...)}
}

func finite(key string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return settingErr(key, "not a finite number")
	}
	return nil
}
