package judge

import (
	"context"
	"sync"

	"github.com/redraft/redraft/rewards"
	"github.com/redraft/redraft/rollout"
)

// Part is the "judge" reward component: the panel's aggregate score of each
// response, normalised to [0, 1]. A response the panel could not score gets
// a nil component with the panel's reason; every judge's score or failure
// reason, and the injection flag, go to the row.
type Part struct {
	Panel *Panel
}

// Name implements rewards.Part.
func (Part) Name() string { return "judge" }

// Score implements rewards.Part. The samples of a group are judged
// concurrently; the panel bounds the calls per sample.
func (p Part) Score(ctx context.Context, g *rollout.Group, scores []rewards.Score) error {
	question := ""
	for _, m := range g.Task.Messages {
		if m.Role == "user" {
			question = m.Content
			break
		}
	}
	var wg sync.WaitGroup
	for i, smp := range g.Samples {
		if smp.Err != "" {
			scores[i].Reward.Components = append(scores[i].Reward.Components,
				rewards.Component{Name: "judge", Reason: "no response: " + smp.Err})
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := p.Panel.Evaluate(ctx, question, smp.Text, g.Task.Reference)
			d := &rewards.JudgeDetail{Flagged: res.Flagged, FlagReason: res.FlagReason}
			for _, v := range res.PerJudge {
				d.Scores = append(d.Scores, rewards.JudgeScore{Judge: v.Judge, Score: v.Score, Raw: v.Raw, Reason: v.Reason})
			}
			c := rewards.Component{Name: "judge", Value: res.Score}
			if res.Score == nil {
				c.Reason = res.Reason
			}
			scores[i].Judge = d
			scores[i].Reward.Components = append(scores[i].Reward.Components, c)
		}()
	}
	wg.Wait()
	return ctx.Err()
}
