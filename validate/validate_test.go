package validate_test

import (
	"context"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/internal/exporttest"
	"github.com/redraft/redraft/tokenizer"
	"github.com/redraft/redraft/validate"
)

var (
	f64          = exporttest.F64
	laterTurn    = exporttest.LaterTurn
	editManifest = exporttest.EditManifest
)

func TestValidate(t *testing.T) {
	track := func(t *testing.T) *export.TokenTrackConfig {
		return exporttest.SyntheticTrack(t, tokenizer.FormatChatML)
	}
	for _, tc := range []struct {
		name string
		// fixture edits before writing, directory edits after.
		before func(*exporttest.Fixture)
		after  func(t *testing.T, dir string)
		// validate with the tokenizer
		withTok bool
		// write sft/1 (no token track)
		noTrack bool
		want    string // substring of a violation; empty: valid
	}{
		{name: "valid"},
		{name: "valid, token track re-rendered", withTok: true},
		{name: "valid, groups one per shard", before: func(fx *exporttest.Fixture) { fx.RLMaxBytes = 1 }},
		{name: "flipped byte", after: func(t *testing.T, dir string) {
			p := filepath.Join(dir, "data/rl/train-00000.parquet")
			b, _ := os.ReadFile(p)
			b[len(b)/3] ^= 1
			os.WriteFile(p, b, 0o644)
		}, want: "rl: data/rl/train-00000.parquet: sha256"},
		{name: "empty column paths in a footer", after: func(t *testing.T, dir string) {
			// parquet-go v0.32.0's Writer.Reset clears a list its footers
			// share: the third file from one writer names no column path.
			p := filepath.Join(dir, "data/rl/train-00000.parquet")
			rows, err := export.ReadRL(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			w := parquet.NewGenericWriter[export.RLRow](io.Discard)
			for i := range 3 {
				f, _ := os.Create(p)
				if i < 2 {
					w.Reset(io.Discard)
				} else {
					w.Reset(f)
				}
				w.Write(rows)
				w.Close()
				f.Close()
			}
		}, want: "footer: row group 0 column 0: path_in_schema \"\", the schema's column is \"task_id\""},
		{name: "truncated file", after: func(t *testing.T, dir string) {
			p := filepath.Join(dir, "data/sft/train-00000.parquet")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)-100], 0o644)
		}, want: "sft: data/sft/train-00000.parquet: "},
		{name: "labels do not match the text", withTok: true, before: func(fx *exporttest.Fixture) {
			fx.SFTRows = func(rows []export.SFTTokensRow) {
				// Train the first token of the masked erroneous step.
				for i, l := range rows[0].Labels {
					if l == -100 && i > 8 {
						rows[0].Labels[i] = rows[0].InputIDs[i]
						break
					}
				}
			}
		}, want: "row 0 (s1): labels do not match the trainable spans"},
		{name: "label that is not its token", before: func(fx *exporttest.Fixture) {
			fx.SFTRows = func(rows []export.SFTTokensRow) { rows[1].Labels[len(rows[1].Labels)-2] = 7 }
		}, want: "row 1 (s2): token"},
		{name: "loss_mask does not match the segments", before: func(fx *exporttest.Fixture) { fx.SFT[1].Messages[1].LossMask = 0 }, want: "row 1 (s2): message 1: loss_mask 0"},
		{name: "segments do not tile the content", noTrack: true, before: func(fx *exporttest.Fixture) { fx.SFT[0].Messages[1].Segments[1].Start++ }, want: "row 0 (s1): message 1 segment 1"},
		{name: "reward not the weighted sum", before: func(fx *exporttest.Fixture) {
			fx.RL[0][1].RewardComponents[0].Weight = 2
			fx.RL[0][1].RewardComponents[0].Value = f64(0.5)
		}, want: "not the weighted sum"},
		{name: "reward not finite", before: func(fx *exporttest.Fixture) { fx.RL[1][0].Reward = f64(math.Inf(1)) }, want: "rl: data/rl/train-00000.parquet: row 4: reward is +Inf, not a finite number"},
		{name: "advantage off", before: func(fx *exporttest.Fixture) { *fx.RL[2][2].Advantage += 1e-3 }, want: "row 9 (group c#t0 sample 2): advantage"},
		{name: "zero-variance group with an advantage", before: func(fx *exporttest.Fixture) { fx.RL[1][1].Advantage = f64(1e-12) }, want: "zero-variance group"},
		{name: "group statistics off", before: func(fx *exporttest.Fixture) { fx.RL[0][0].GroupRewardStd = f64(0.5) }, want: "group_reward_mean"},
		{name: "group split across shards", before: func(fx *exporttest.Fixture) {
			fx.RLMaxBytes = 1
			g := fx.RL[0]
			fx.RL = append([][]export.RLRow{g[:2], g[2:]}, fx.RL[1:]...)
		}, want: "appears again"},
		{name: "schema version differs from the manifest", after: func(t *testing.T, dir string) {
			editManifest(t, dir, func(m *export.Manifest) { ds := m.Datasets["pairs"]; ds.Schema = "pairs/9"; m.Datasets["pairs"] = ds })
		}, want: "no description for schema pairs/9"},
		{name: "response_messages not the response", before: func(fx *exporttest.Fixture) {
			fx.RLRows = func(g [][]export.RLRow) { g[0][1].ResponseMessages[0].Content += " (edited)" }
		}, want: "row 1 (group a#t0 sample 1): response_messages"},
		{name: "response_messages null", before: func(fx *exporttest.Fixture) {
			fx.RLRows = func(g [][]export.RLRow) { g[1][0].ResponseMessages = nil }
		}, want: "response_messages is null"},
		{name: "valid, engine track that matches the tokenizer", withTok: true, before: func(fx *exporttest.Fixture) {
			fx.RLRows = func(g [][]export.RLRow) {
				g[0][0].TokenSource, g[0][0].TokenCheck = strp(export.TokenSourceEngine), strp(export.TokenCheckMatch)
			}
		}},
		{name: "engine track with a wrong token_check", withTok: true, before: func(fx *exporttest.Fixture) {
			fx.RLRows = func(g [][]export.RLRow) {
				g[0][0].TokenSource, g[0][0].TokenCheck = strp(export.TokenSourceEngine), strp(export.TokenCheckMismatch)
			}
		}, want: `row 0 (group a#t0 sample 0): token_check "mismatch", but comparing the engine's ids with the shard's tokenizer gives "match"`},
		{name: "track without token_source", before: func(fx *exporttest.Fixture) {
			fx.RLRows = func(g [][]export.RLRow) { g[0][1].TokenSource = nil }
		}, want: `row 1 (group a#t0 sample 1): token_source "" on a row with a token track`},
		{name: "token_check on a tokenizer track", before: func(fx *exporttest.Fixture) {
			fx.RLRows = func(g [][]export.RLRow) { g[0][1].TokenCheck = strp(export.TokenCheckMatch) }
		}, want: `token_check "match" on a row whose track is not the engine's`},
		{name: "logprobs not one per token, unflagged", before: func(fx *exporttest.Fixture) {
			fx.RLRows = func(g [][]export.RLRow) { g[1][0].Logprobs = []export.TokenLogprob{{Token: "a", Logprob: -1}} }
		}, want: "logprobs are not aligned with response_ids, and logprobs_reason is null: 1 logprobs for"},
		{name: "engine logprobs flagged though aligned", before: func(fx *exporttest.Fixture) {
			fx.RLRows = func(g [][]export.RLRow) {
				r := &g[1][0]
				r.TokenSource, r.LogprobsReason = strp(export.TokenSourceEngine), strp("made up")
				r.Logprobs = make([]export.TokenLogprob, len(r.ResponseIDs))
			}
		}, want: `logprobs_reason "made up", but the`},
		{name: "chosen message not chosen_text", before: func(fx *exporttest.Fixture) { fx.Pairs[0].Chosen[0].Content = "A: 3" },
			want: "(a#s0#t1): chosen's content is not chosen_text"},
		{name: "rejected not one assistant message", before: func(fx *exporttest.Fixture) {
			fx.Pairs[0].Rejected = append(fx.Pairs[0].Rejected, export.Message{Role: "user", Content: "more"})
		}, want: "rejected holds 2 messages, not one assistant message"},
		{name: "rows differ from the manifest", after: func(t *testing.T, dir string) {
			editManifest(t, dir, func(m *export.Manifest) { ds := m.Datasets["rl"]; ds.Shards[0].Rows++; m.Datasets["rl"] = ds })
		}, want: "rows in the footer"},
		{name: "shard not in the manifest", after: func(t *testing.T, dir string) {
			b, _ := os.ReadFile(filepath.Join(dir, "data/pairs/train-00000.parquet"))
			os.WriteFile(filepath.Join(dir, "data/pairs/train-00001.parquet"), b, 0o644)
		}, want: "data/pairs/train-00001.parquet is on disk but not in the manifest"},
		{name: "valid, a later turn holds the episodes still running", before: func(fx *exporttest.Fixture) {
			fx.RL = append(fx.RL, laterTurn(1, 3))
		}},
		{name: "later turn out of sample order", before: func(fx *exporttest.Fixture) {
			fx.RL = append(fx.RL, laterTurn(3, 1))
		}, want: "sample_index 1 at position 1 of its group, not in increasing sample order"},
		{name: "rl labels shifted by one", before: func(fx *exporttest.Fixture) {
			fx.RLRows = func(gs [][]export.RLRow) {
				r := &gs[0][1]
				r.Labels = append([]int32{-100}, r.Labels[:len(r.Labels)-1]...)
			}
		}, want: "row 1 (group a#t0 sample 1): token"},
		{name: "rl labels shifted by one, re-rendered", withTok: true, before: func(fx *exporttest.Fixture) {
			fx.RLRows = func(gs [][]export.RLRow) {
				r := &gs[2][0]
				r.Labels = append(r.Labels[1:], -100)
			}
		}, want: "(group c#t0 sample 0): token"},
		{name: "rl input_ids not prompt and response", before: func(fx *exporttest.Fixture) {
			fx.RLRows = func(gs [][]export.RLRow) { r := &gs[1][2]; r.ResponseIDs = r.ResponseIDs[1:] }
		}, want: "(group b#t0 sample 2): input_ids are not prompt_ids + response_ids"},
		{name: "rl response tokens not a re-render", withTok: true, before: func(fx *exporttest.Fixture) {
			fx.RLRows = func(gs [][]export.RLRow) {
				// Consistent in shape, but not what the tokenizer gives.
				r := &gs[0][0]
				np := len(r.PromptIDs)
				r.ResponseIDs[0]++
				r.InputIDs[np]++
				r.Labels[np]++
			}
		}, want: "(group a#t0 sample 0): response_ids differ"},
		{name: "rl track and a reason", before: func(fx *exporttest.Fixture) {
			fx.RLRows = func(gs [][]export.RLRow) { reason := export.NoTokenizer; gs[0][3].TokenReason = &reason }
		}, want: "(group a#t0 sample 3): token_reason"},
		{name: "rl track without a tokenizer in the metadata", noTrack: true, before: func(fx *exporttest.Fixture) {
			fx.RLRows = func(gs [][]export.RLRow) { gs[0][0].TokenReason = nil; gs[0][0].PromptIDs = []int32{1} }
		}, want: "metadata names no tokenizer"},
		{name: "pair that is not a flip", before: func(fx *exporttest.Fixture) { fx.Pairs[0].Transition = "c->c" }, want: "transition"},
		// Every count the manifest states is cross-checked.
		{name: "rewards.rows differs from the rl rows", after: func(t *testing.T, dir string) {
			editManifest(t, dir, func(m *export.Manifest) { m.Rewards.Rows = 9 })
		}, want: "manifest: rewards.rows is 9, datasets.rl.rows is 10"},
		{name: "rewards.groups differs from the rl groups", after: func(t *testing.T, dir string) {
			editManifest(t, dir, func(m *export.Manifest) { m.Rewards.Groups = 4 })
		}, want: "rewards.groups is 4 (0 of them dropped for zero variance), datasets.rl.groups is 3"},
		{name: "rewards.failed differs from the rows with an error", after: func(t *testing.T, dir string) {
			editManifest(t, dir, func(m *export.Manifest) { m.Rewards.Failed = 1 })
		}, want: "rewards.failed is 1, the rl shards hold 0 rows with an error"},
		{name: "rewards.null_rewards differs from the rows", after: func(t *testing.T, dir string) {
			editManifest(t, dir, func(m *export.Manifest) { m.Rewards.NullRewards = 2 })
		}, want: "rewards.null_rewards is 2, the rl shards hold 0 rows with a null reward"},
		{name: "rewards.graded differs from the rows", after: func(t *testing.T, dir string) {
			editManifest(t, dir, func(m *export.Manifest) { m.Rewards.Graded = 9 })
		}, want: "rewards.graded is 9, the rl shards hold 10 rows graded"},
		{name: "rewards.finish_reasons differs from the rows", after: func(t *testing.T, dir string) {
			editManifest(t, dir, func(m *export.Manifest) { m.Rewards.FinishReason = map[string]int64{"stop": 10} })
		}, want: `rewards.finish_reasons["stop"] is 10, the rl shards hold 0 rows`},
		{name: "dataset rows differ from its shards", after: func(t *testing.T, dir string) {
			editManifest(t, dir, func(m *export.Manifest) { ds := m.Datasets["verl"]; ds.Rows++; m.Datasets["verl"] = ds })
		}, want: "verl: manifest totals 4 rows, 3 groups; its shards sum to 3 rows, 3 groups"},
		{name: "shard groups differ from its rows", after: func(t *testing.T, dir string) {
			editManifest(t, dir, func(m *export.Manifest) {
				ds := m.Datasets["rl"]
				ds.Shards[0].Groups++
				ds.Groups++
				m.Datasets["rl"] = ds
				m.Rewards.Groups++
			})
		}, want: "rl: data/rl/train-00000.parquet: 3 groups in the rows, manifest says 4"},
		{name: "pairs groups differ from their rows", after: func(t *testing.T, dir string) {
			editManifest(t, dir, func(m *export.Manifest) {
				ds := m.Datasets["pairs"]
				ds.Shards[0].Groups, ds.Groups = 2, 2
				m.Datasets["pairs"] = ds
			})
		}, want: "pairs: data/pairs/train-00000.parquet: 1 groups in the rows, manifest says 2"},
		{name: "failures count differs from its lines", after: func(t *testing.T, dir string) {
			exporttest.WriteFailures(t, dir, 2, `{"task_id":"a","sample_index":0,"turn":0,"error":"boom"}`)
		}, want: "manifest: failures.count is 2, failures.jsonl has 1 lines"},
		{name: "failures record differs from rewards.failed", after: func(t *testing.T, dir string) {
			exporttest.WriteFailures(t, dir, 1, `{"task_id":"a","sample_index":0,"turn":0,"error":"boom"}`)
		}, want: "manifest: rewards.failed is 0, the failures record lists 1"},
		{name: "failures line that is not a failure", after: func(t *testing.T, dir string) {
			exporttest.WriteFailures(t, dir, 1, `{"task_id":"a","sample_index":0,"turn":0}`)
		}, want: "failures.jsonl: line 1: a failure needs a task_id and an error"},
		{name: "failures record not in the manifest", after: func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, export.FailuresName), []byte("{}\n"), 0o644)
		}, want: "failures.jsonl is on disk but not in the manifest"},
		{name: "skipped_total below the records listed", after: func(t *testing.T, dir string) {
			editManifest(t, dir, func(m *export.Manifest) {
				m.Skipped = []export.Skipped{{File: "in.jsonl", Line: 1, Reason: "x"}, {File: "in.jsonl", Line: 2, Reason: "y"}}
				m.SkippedTotal = 1
			})
		}, want: "skipped_total is 1, but 2 skipped records are listed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			fx := exporttest.New()
			if tc.before != nil {
				tc.before(fx)
			}
			tt := track(t)
			if tc.noTrack {
				tt = nil
			}
			fx.Write(t, dir, tt)
			if tc.after != nil {
				tc.after(t, dir)
			}
			var opts validate.Options
			if tc.withTok {
				opts.Tokens = track(t)
			}
			rep, err := validate.Dir(context.Background(), dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for _, v := range rep.Violations {
				lines = append(lines, v.String())
			}
			all := strings.Join(lines, "\n")
			switch {
			case tc.want == "" && !rep.OK():
				t.Fatalf("valid output rejected:\n%s", all)
			case tc.want != "" && !strings.Contains(all, tc.want):
				t.Fatalf("want a violation containing %q, got:\n%s", tc.want, all)
			}
			if tc.want == "" && len(rep.Datasets) != 4 {
				t.Errorf("datasets checked: %+v", rep.Datasets)
			}
		})
	}
}
