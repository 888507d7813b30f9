package tokenizer

import (
	"slices"
	"testing"
	"unicode/utf8"
)

// FuzzEncode: Encode never panics, EncodeWithOffsets agrees with it and its spans cover the
// text, and without normalizer or whitespace-stripping tokens Decode(Encode(s)) == s.
func FuzzEncode(f *testing.F) {
	for _, s := range handWritten {
		f.Add(s)
	}
	full := synthetic(f)
	plain, err := syntheticVariant(f, func(j map[string]any) {
		j["normalizer"] = nil
		for _, a := range j["added_tokens"].([]any) {
			m := a.(map[string]any)
			m["lstrip"], m["rstrip"] = false, false
		}
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, tk := range []*Tokenizer{full, plain} {
			ids, offs := tk.EncodeWithOffsets(s)
			if !slices.Equal(ids, tk.Encode(s)) {
				t.Fatalf("EncodeWithOffsets and Encode differ on %q", s)
			}
			end := 0
			for i, o := range offs {
				if o[0] < 0 || o[1] > len(s) || o[0] >= o[1] || o[0] > end {
					t.Fatalf("%q: bad span %d %v", s, i, o)
				}
				end = max(end, o[1])
			}
			if end != len(s) {
				t.Fatalf("%q: spans end at %d", s, end)
			}
		}
		normed, al := full.normalizeAligned(s)
		if normed != full.normalize(s) {
			t.Fatalf("%q: normalizeAligned gives %q, normalize %q", s, normed, full.normalize(s))
		}
		if al != nil {
			n, o := 0, 0
			for _, sg := range al.segs {
				if sg.nStart != n || sg.oStart != o || sg.nEnd <= sg.nStart || sg.oEnd <= sg.oStart {
					t.Fatalf("%q: bad alignment %+v", s, al.segs)
				}
				n, o = sg.nEnd, sg.oEnd
			}
			if n != len(normed) || o != len(s) {
				t.Fatalf("%q: alignment ends at %d/%d of %d/%d", s, n, o, len(normed), len(s))
			}
		}
		if utf8.ValidString(s) {
			if got := plain.Decode(plain.Encode(s)); got != s {
				t.Fatalf("Decode(Encode(%q)) = %q", s, got)
			}
		}
	})
}
