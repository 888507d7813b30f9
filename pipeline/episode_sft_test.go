package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/internal/doccheck"
	"github.com/redraft/redraft/rollout"
	"github.com/redraft/redraft/rollout/fakeserver"
	"github.com/redraft/redraft/tokenizer"
	"github.com/redraft/redraft/validate"
)

// pamResponder answers first attempts like AnswerBySeed and the PAM
// instruction with a verification and "Modified answer: <AnswerBySeed's
// answer>". By the seeds: a first attempt fails (seed mod 11 = 0), a
// revision runs past max_tokens (seed mod 7 = 0) or omits the marker (seed
// mod 5 = 0).
func pamResponder(answers map[string]int) fakeserver.Responder {
	base := fakeserver.AnswerBySeed(answers)
	return func(req *fakeserver.Request) fakeserver.Reply {
		seed := *req.Seed
		if req.Messages[len(req.Messages)-1].Content != rollout.PAMInstruction {
			if seed%11 == 0 {
				return fakeserver.Reply{Status: 400, Message: "bad request"}
			}
			return base(req)
		}
		text := "I checked the addition in the answer above step by step. "
		switch {
		case seed%7 == 0:
			text += strings.Repeat("again ", 80)
		case seed%5 != 0:
			text += rollout.PAMAnswerMarker + " "
		}
		return fakeserver.Reply{Text: text + base(req).Text}
	}
}

// spanText returns the text of the spans of m that are (or are not)
// trained, concatenated.
func spanText(m export.SFTMessage, trained bool) string {
	runes := []rune(m.Content)
	var b strings.Builder
	for _, s := range m.Segments {
		if s.Trainable == trained {
			b.WriteString(string(runes[s.Start:s.End]))
		}
	}
	return b.String()
}

func readSFT(t *testing.T, dir string) []export.SFTRow {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(dir, "data", "sft", "*.parquet"))
	var out []export.SFTRow
	for _, p := range paths {
		rows, err := export.ReadRows[export.SFTRow](context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rows...)
	}
	return out
}

// PAM: one assistant turn of first answer (masked), separator, verification
// and modified answer (trained); only correct finals kept, the rest counted
// by reason.
func TestEpisodeSFTPAM(t *testing.T) {
	tasks, answers := writeTasks(t, 16)
	srv := fakeserver.New(pamResponder(answers))
	defer srv.Close()
	cfg := episodeConfig(t, srv, tasks, "episode: {turns: 2, feedback: fixed, sft: pam}\n")
	m, err := Execute(context.Background(), cfg, JobOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkValid(t, cfg.Output.Dir)
	rl := map[string]export.RLRow{}
	for _, r := range readAll(t, cfg.Output.Dir) {
		rl[fmt.Sprintf("%s#s%d#t%d", r.TaskID, r.SampleIndex, r.Turn)] = r
	}
	// Predict every episode's fate from its seeds.
	want := map[string]int64{}
	kept := map[string]string{} // trajectory id -> split
	for task := range 16 {
		id := fmt.Sprintf("toy-%d", task)
		for i := range 4 {
			s0, s1 := rollout.DeriveSeed(7, id, i, 0), rollout.DeriveSeed(7, id, i, 1)
			switch {
			case s0%11 == 0:
				want[FilterIncomplete]++
			case s1%7 == 0:
				want[FilterTruncated]++
			case !fakeserver.IsCorrectSeed(s1):
				want[FilterIncorrect]++
			case s1%5 == 0:
				kept[fmt.Sprintf("%s#s%d#pam", id, i)] = "none"
			default:
				kept[fmt.Sprintf("%s#s%d#pam", id, i)] = "marker"
			}
		}
	}
	for _, why := range []string{FilterIncomplete, FilterTruncated, FilterIncorrect} {
		if want[why] == 0 {
			t.Errorf("no episode is %s; the seeds do not exercise the filter", why)
		}
	}
	ds := m.Datasets["sft"]
	if ds.Schema != export.SFTSchema || ds.Rows != int64(len(kept)) || fmt.Sprint(ds.Filtered) != fmt.Sprint(want) {
		t.Fatalf("sft dataset: schema %s, %d rows (want %d), filtered %v (want %v)", ds.Schema, ds.Rows, len(kept), ds.Filtered, want)
	}
	rows := readSFT(t, cfg.Output.Dir)
	splits := map[string]bool{}
	for _, r := range rows {
		split, ok := kept[r.ID]
		if !ok || r.Recipe != "pam" || r.DataSource != "toy" || r.Reward == nil || *r.Reward != 1 {
			t.Fatalf("row %s: unexpected (recipe %s, reward %v)", r.ID, r.Recipe, r.Reward)
		}
		base := strings.TrimSuffix(r.ID, "#pam")
		y1, y2 := rl[base+"#t0"].Response, rl[base+"#t1"].Response
		if len(r.Messages) != 2 || r.Messages[0].Role != "user" || r.Messages[0].LossMask != 0 || r.Messages[1].Role != "assistant" || r.Messages[1].LossMask != 1 {
			t.Fatalf("row %s: messages %+v", r.ID, r.Messages)
		}
		a := r.Messages[1]
		var roles []string
		for _, s := range a.Segments {
			roles = append(roles, fmt.Sprintf("%s:%v", s.Role, s.Trainable))
		}
		wantRoles := "attempt:false separator:true reflection:true correction:true"
		if split == "none" {
			wantRoles = "attempt:false separator:true correction:true"
		}
		// The first answer is exactly the masked text; the spans trained are
		// exactly the separator, the verification and the modified answer.
		if a.Content != y1+PAMSeparator+y2 || spanText(a, false) != y1 || spanText(a, true) != PAMSeparator+y2 || strings.Join(roles, " ") != wantRoles {
			t.Fatalf("row %s: content %q\nmasked %q\ntrained %q\nroles %v", r.ID, a.Content, spanText(a, false), spanText(a, true), roles)
		}
		if split == "marker" && !strings.HasPrefix(string([]rune(a.Content)[a.Segments[3].Start:]), rollout.PAMAnswerMarker) {
			t.Errorf("row %s: correction does not start at the marker", r.ID)
		}
		var meta struct {
			FirstCorrect *bool `json:"first_correct"`
			Split        string
		}
		if err := json.Unmarshal([]byte(*r.Metadata), &meta); err != nil || meta.Split != split || *meta.FirstCorrect != *rl[base+"#t0"].Correct {
			t.Fatalf("row %s: metadata %s", r.ID, *r.Metadata)
		}
		splits[split] = true
	}
	if !splits["none"] || !splits["marker"] {
		t.Errorf("splits seen: %v", splits)
	}
	checkDocRow(t, "docs/recipes/pam.md", doccheck.One(t, "..", "docs/recipes/pam.md", "TestEpisodeSFTPAM"), rows)
}

// PTR: the conversation as sampled, thoughts and the initial attempt masked,
// refined answers trained, no reward filter; thoughts inline or in the
// reasoning field.
func TestEpisodeSFTPTR(t *testing.T) {
	for _, reasoning := range []bool{false, true} {
		t.Run(fmt.Sprintf("reasoning=%v", reasoning), func(t *testing.T) {
			tasks, answers := writeTasks(t, 6)
			srv := fakeserver.New(fakeserver.Thoughts(fakeserver.AnswerBySeed(answers), reasoning))
			defer srv.Close()
			cfg := episodeConfig(t, srv, tasks, "episode: {turns: 3, feedback: fixed, sft: ptr}\n")
			m, err := Execute(context.Background(), cfg, JobOptions{})
			if err != nil {
				t.Fatal(err)
			}
			checkValid(t, cfg.Output.Dir)
			rl := map[string]export.RLRow{}
			for _, r := range readAll(t, cfg.Output.Dir) {
				rl[fmt.Sprintf("%s#s%d#t%d", r.TaskID, r.SampleIndex, r.Turn)] = r
			}
			rows := readSFT(t, cfg.Output.Dir)
			if len(rows) != 24 || m.Datasets["sft"].Rows != 24 || len(m.Datasets["sft"].Filtered) != 0 {
				t.Fatalf("%d sft rows, manifest %+v", len(rows), m.Datasets["sft"])
			}
			wrong := 0
			for _, r := range rows {
				base := strings.TrimSuffix(r.ID, "#ptr")
				if r.Recipe != "ptr" || r.Reward != nil || len(r.Messages) != 6 {
					t.Fatalf("row %s: recipe %s reward %v, %d messages", r.ID, r.Recipe, r.Reward, len(r.Messages))
				}
				for k, msg := range r.Messages {
					turn := (k - 1) / 2
					switch {
					case k == 0:
						if msg.Role != "user" || msg.LossMask != 0 || !strings.HasPrefix(msg.Content, "What is") {
							t.Fatalf("row %s: question %+v", r.ID, msg)
						}
					case k%2 == 0:
						if msg.Role != "user" || msg.LossMask != 0 || msg.Content != rollout.PTRInstruction {
							t.Fatalf("row %s: instruction %+v", r.ID, msg)
						}
					default:
						src := rl[fmt.Sprintf("%s#t%d", base, turn)]
						thought, answer := msg.Segments[0], msg.Segments[1]
						wantContent := src.Response
						if reasoning {
							wantContent = "<think>\n" + *src.Reasoning + "\n</think>\n\n" + src.Response
						}
						runes := []rune(msg.Content)
						thoughtText := string(runes[thought.Start:thought.End])
						if msg.Role != "assistant" || msg.Content != wantContent || len(msg.Segments) != 2 ||
							thought.Role != SegThought || thought.Trainable || !strings.HasPrefix(thoughtText, "<think>") || !strings.Contains(thoughtText, "</think>") {
							t.Fatalf("row %s round %d: %+v", r.ID, turn, msg)
						}
						// Round 0 is the attempt, masked; later rounds train exactly
						// the refined answer.
						trained := spanText(msg, true)
						if turn == 0 && (msg.LossMask != 0 || answer.Role != SegAttempt || trained != "") ||
							turn > 0 && (msg.LossMask != 1 || answer.Role != SegAnswer || trained != string(runes[answer.Start:]) || strings.Contains(trained, "think>")) {
							t.Fatalf("row %s round %d: loss %d, answer %+v, trained %q", r.ID, turn, msg.LossMask, answer, trained)
						}
						if turn > 0 && !*src.Correct {
							wrong++
						}
					}
				}
			}
			if wrong == 0 {
				t.Error("no wrong refinement kept; PTR must not filter by reward")
			}
			if !reasoning { // the page's row has its thoughts inline
				checkDocRow(t, "docs/recipes/ptr.md", doccheck.One(t, "..", "docs/recipes/ptr.md", "TestEpisodeSFTPTR"), rows)
			}
		})
	}
}

// With output.tokenizer the sft rows carry the token track (sft/4), which
// validates by re-rendering; trained tokens come from the trained text only.
func TestEpisodeSFTTokens(t *testing.T) {
	tasks, answers := writeTasks(t, 6)
	srv := fakeserver.New(pamResponder(answers))
	defer srv.Close()
	tok := "../tokenizer/testdata/synthetic.json"
	cfg := episodeConfig(t, srv, tasks, "episode: {turns: 2, feedback: fixed, sft: pam}\n")
	cfg.Output.Tokenizer, cfg.Output.ChatFormat = tok, "chatml"
	m, err := Execute(context.Background(), cfg, JobOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Datasets["sft"].Schema != export.SFTTokensSchema || m.Datasets["sft"].Rows == 0 {
		t.Fatalf("sft dataset %+v", m.Datasets["sft"])
	}
	track, err := export.LoadTokenTrack(tok, "")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := validate.Dir(context.Background(), cfg.Output.Dir, validate.Options{Tokens: track})
	if err != nil || !rep.OK() {
		t.Fatalf("validate with re-rendering: %v %+v", err, rep)
	}
	paths, _ := filepath.Glob(filepath.Join(cfg.Output.Dir, "data", "sft", "*.parquet"))
	rows, err := export.ReadRows[export.SFTTokensRow](context.Background(), paths[0])
	if err != nil {
		t.Fatal(err)
	}
	tk, err := tokenizer.Load(tok)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		trainedText := spanText(r.Messages[1], true) + "<|im_end|>"
		var run []int
		covered := 0
		flush := func() {
			if len(run) > 0 {
				s := tk.Decode(run)
				if !strings.Contains(trainedText, s) {
					t.Fatalf("row %s: trained tokens %q are not trained text", r.ID, s)
				}
				covered += len(s)
			}
			run = run[:0]
		}
		for i, l := range r.Labels {
			if l == -100 {
				flush()
				continue
			}
			if l != r.InputIDs[i] {
				t.Fatalf("row %s: label %d for id %d", r.ID, l, r.InputIDs[i])
			}
			run = append(run, int(l))
		}
		flush()
		if covered < len(trainedText)/2 {
			t.Errorf("row %s: %d trained bytes for %d bytes of trained text", r.ID, covered, len(trainedText))
		}
	}
}

func TestEpisodeSFTSplitThought(t *testing.T) {
	tests := []struct{ response, reasoning, thought, answer, source string }{
		{"<think>hm</think>\n\n42", "", "<think>hm</think>\n\n", "42", "inline"},
		{"a</think>b</think> c", "", "a</think>b</think> ", "c", "inline"},
		{"42", "hm", "<think>\nhm\n</think>\n\n", "42", "reasoning"},
		{"no thought, 42", "", "", "no thought, 42", "none"},
		{"<think>cut off", "", "", "<think>cut off", "none"},
	}
	for _, tt := range tests {
		th, an, src := SplitThought(tt.response, tt.reasoning)
		if th != tt.thought || an != tt.answer || src != tt.source {
			t.Errorf("SplitThought(%q, %q) = %q, %q, %q", tt.response, tt.reasoning, th, an, src)
		}
	}
}
