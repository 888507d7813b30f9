package export

import (
	"strings"
	"testing"

	"github.com/redraft/redraft/tokenizer"
)

func syntheticTrack(t *testing.T, format tokenizer.Format) *TokenTrackConfig {
	t.Helper()
	tt, err := LoadTokenTrack("../tokenizer/testdata/synthetic.json", format)
	if err != nil {
		t.Fatal(err)
	}
	return tt
}

// sftRow builds a row from messages given as role and (text, trainable)
// pieces.
func sftRow(id string, msgs ...[]any) SFTRow {
	row := SFTRow{ID: id, TaskID: id, Recipe: "test", DataSource: "toy"}
	for _, m := range msgs {
		msg := SFTMessage{Role: m[0].(string)}
		pos := int32(0)
		for k := 1; k+1 < len(m); k += 2 {
			text, tr := m[k].(string), m[k+1].(bool)
			n := int32(len([]rune(text)))
			msg.Content += text
			msg.Segments = append(msg.Segments, SFTSpan{Role: "seg", Start: pos, End: pos + n, Trainable: tr})
			pos += n
			if tr && n > 0 {
				msg.LossMask = 1
			}
		}
		row.Messages = append(row.Messages, msg)
	}
	return row
}

// The trained tokens, decoded, are exactly trainable text (plus the
// end-of-turn token of an assistant message that ends trained), and every
// piece of trainable text that is not glued to masked text is trained.
func TestTokenTrack(t *testing.T) {
	for _, tc := range []struct {
		name    string
		format  tokenizer.Format
		row     SFTRow
		trained []string // decoded runs of consecutive trained tokens
		err     string
	}{
		{"assistant trained", tokenizer.FormatChatML,
			sftRow("a", []any{"user", "What is 2+2?", false}, []any{"assistant", "It is 4.", true}),
			[]string{"It is 4.<|im_end|>"}, ""},
		{"masked erroneous step, trained correction", tokenizer.FormatChatML,
			sftRow("b", []any{"user", "Add 3 and 5.", false},
				[]any{"assistant", "3 + 5 = 9.", false, "\nWait, that is wrong.", true, "\n3 + 5 = 8.", true}),
			[]string{"\nWait, that is wrong.\n3 + 5 = 8.<|im_end|>"}, ""},
		{"trained then masked: no end-of-turn token", tokenizer.FormatChatML,
			sftRow("c", []any{"user", "Hi", false}, []any{"assistant", "Hello there.", true, " The end", false}),
			[]string{"Hello there."}, ""},
		{"code points, not bytes", tokenizer.FormatChatML,
			sftRow("d", []any{"user", "Résumé?", false}, []any{"assistant", "Café —\n", false, "naïve.", true}),
			[]string{"naïve.<|im_end|>"}, ""},
		{"llama3 trims the content", tokenizer.FormatLlama3,
			sftRow("e", []any{"user", "Q", false}, []any{"assistant", "  Answer.  ", true}),
			[]string{"Answer.<|eot_id|>"}, ""},
		{"qwen3 think block is template", tokenizer.FormatQwen3,
			sftRow("f", []any{"user", "Q", false}, []any{"assistant", "Done.", true}),
			[]string{"Done.<|im_end|>"}, ""},
		{"nothing trainable", tokenizer.FormatChatML,
			sftRow("g", []any{"user", "Q", false}, []any{"assistant", "A", false}),
			nil, ""},
		{"segments that do not tile", tokenizer.FormatChatML,
			func() SFTRow {
				r := sftRow("h", []any{"assistant", "abc", true})
				r.Messages[0].Segments[0].End = 2
				return r
			}(), nil, "segments end at 2"},
		{"segment gap", tokenizer.FormatChatML,
			func() SFTRow {
				r := sftRow("i", []any{"assistant", "ab", true, "cd", false})
				r.Messages[0].Segments[1].Start = 3
				return r
			}(), nil, "does not continue at 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tt := syntheticTrack(t, tc.format)
			ids, labels, attn, err := TokenTrack(tt.Tok, tc.format, tc.row)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(ids) != len(labels) || len(ids) != len(attn) {
				t.Fatalf("lengths %d %d %d", len(ids), len(labels), len(attn))
			}
			var runs []string
			var cur []int
			flush := func() {
				if len(cur) > 0 {
					runs = append(runs, tt.Tok.Decode(cur))
					cur = nil
				}
			}
			for i, id := range ids {
				if attn[i] != 1 {
					t.Fatalf("attention %d at %d", attn[i], i)
				}
				switch labels[i] {
				case -100:
					flush()
				case id:
					cur = append(cur, int(id))
				default:
					t.Fatalf("label %d for id %d", labels[i], id)
				}
			}
			flush()
			if strings.Join(runs, "|") != strings.Join(tc.trained, "|") {
				t.Errorf("trained runs %q, want %q", runs, tc.trained)
			}
		})
	}
}
