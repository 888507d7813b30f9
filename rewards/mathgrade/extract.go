package mathgrade

import (
	"strings"
)

// Extraction limits. They keep extraction linear in the response length.
const (
	maxBareBytes   = 160  // longest text read as a bare answer
	maxMarkerScan  = 32   // occurrences of one marker examined, from the end
	maxAnswerScan  = 4096 // bytes after a marker that may hold the answer
	maxBoxGapBytes = 60   // longest text between two boxes that join
)

// Extract returns the final answer stated in text, the rule that found it,
// and whether one was found. See the package doc for the precedence of the
// rules and for what counts as a bare answer. Extract is linear in len(text)
// up to small constant factors and never panics.
func Extract(text string) (answer, rule string, ok bool) {
	defer func() {
		if recover() != nil {
			answer, rule, ok = "", "", false
		}
	}()
	b := newBudget(DefaultTimeout, DefaultMaxSteps)
	ex := extract(text, b)
	return ex.answer, ex.rule, ex.ok
}

// extraction is the internal result of extract; why says, when !ok, why
// nothing was found ("empty", "cut_off", "empty_boxed", "not_stated").
type extraction struct {
	answer string
	rule   string
	ok     bool
	why    string
}

func found(answer, rule string) extraction {
	return extraction{answer: answer, rule: rule, ok: true}
}

func extract(text string, b *budget) extraction {
	t := strings.TrimSpace(text)
	if t == "" {
		return extraction{why: "empty"}
	}
	// Reasoning inside <think> is not an answer. An unclosed <think> means
	// the response was cut off while thinking.
	if i := lastIndex(t, "</think>"); i >= 0 {
		t = strings.TrimSpace(t[i+len("</think>"):])
		if t == "" {
			return extraction{why: "not_stated"}
		}
	} else if strings.Contains(t, "<think>") {
		return extraction{why: "cut_off"}
	}
	t = stripChatTail(t)
	if t == "" {
		return extraction{why: "empty"}
	}
	b.tick(len(t) / 64)
	lower := asciiLower(t)

	if a, ok := answerTag(t, lower, b); ok {
		return found(a, "answer_tag")
	}
	// Final-answer statements compete by position: the last one stated
	// wins, so an intermediate box or an early "final answer" phrase does
	// not override the conclusion.
	best := extraction{}
	bestPos := -1
	consider := func(a, rule string, pos int, ok bool) {
		if ok && pos > bestPos {
			best, bestPos = found(a, rule), pos
		}
	}
	a, pos, ok := afterMarker(t, lower, "final answer", markerColonOrIs, b)
	consider(a, "final_answer", pos, ok)
	boxes := lastBoxes(t, b)
	a, rule, why, boxPos := pickBoxes(t, boxes)
	consider(a, rule, boxPos, why == "")
	a, pos, ok = afterMarker(t, lower, "####", markerAny, b)
	consider(a, "hash", pos, ok)
	a, pos, ok = answerColon(t, lower, b)
	consider(a, "answer_colon", pos, ok)
	a, pos, ok = answerHeading(t, lower, b)
	consider(a, "answer_heading", pos, ok)
	if why == "empty_boxed" && boxPos > bestPos {
		return extraction{why: why}
	}
	if bestPos >= 0 {
		return best
	}
	// Weaker statements count only when there is no final-answer
	// statement: "the answer is correct" after a box must not override it.
	if a, _, ok := afterMarker(t, lower, "answer is", markerAny, b); ok {
		return found(a, "the_answer_is")
	}
	if a, ok := choiceMarker(t, lower, b); ok {
		return found(a, "choice")
	}
	if a, ok := bareAnswer(t, b); ok {
		return found(a, "bare")
	}
	if looksCutOff(t, boxes) {
		return extraction{why: "cut_off"}
	}
	return extraction{why: "not_stated"}
}

// lastIndex is strings.LastIndex by forward search: strings.Index is
// vectorised, the backward search is not, and markers are rare.
func lastIndex(s, sub string) int {
	last := -1
	for pos := 0; ; {
		i := strings.Index(s[pos:], sub)
		if i < 0 {
			return last
		}
		last = pos + i
		pos = last + 1
	}
}

// lastOccurrences returns the positions of the last k occurrences of sub
// in s, in decreasing order, in one forward pass.
func lastOccurrences(s, sub string, k int) []int {
	ring := make([]int, 0, 8)
	n := 0
	for pos := 0; ; {
		i := strings.Index(s[pos:], sub)
		if i < 0 {
			break
		}
		if len(ring) < k {
			ring = append(ring, pos+i)
		} else {
			ring[n%k] = pos + i
		}
		n++
		pos += i + 1
	}
	// Occurrence m (counting from 0) sits at ring[m%k].
	out := make([]int, len(ring))
	for j := range out {
		out[j] = ring[(n-1-j)%k]
	}
	return out
}

// stripChatTail drops a chat-template continuation such as
// "<|im_start|>user ..." that some generations run into.
func stripChatTail(t string) string {
	cut := len(t)
	for _, tok := range [...]string{"<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>"} {
		if i := strings.Index(t, tok); i >= 0 && i < cut {
			cut = i
		}
	}
	return strings.TrimSpace(t[:cut])
}

// asciiLower lower-cases ASCII letters only, so byte offsets stay aligned
// with the original text.
func asciiLower(s string) string {
	buf := []byte(s)
	for i, c := range buf {
		if 'A' <= c && c <= 'Z' {
			buf[i] = c + 32
		}
	}
	return string(buf)
}

func answerTag(t, lower string, b *budget) (string, bool) {
	i := lastIndex(lower, "<answer>")
	if i < 0 {
		return "", false
	}
	rest := t[i+len("<answer>"):]
	if j := strings.Index(asciiLower(rest), "</answer>"); j >= 0 {
		rest = rest[:j]
	}
	rest = strings.TrimSpace(rest)
	if rest == "" {
		return "", false
	}
	// The tag holds the answer as a whole, even when it is a sentence,
	// unless it holds a box.
	if len(rest) <= maxBareBytes && !strings.Contains(rest, `\boxed`) {
		if a := trimTrailingPunct(unwrap(rest)); a != "" {
			return a, true
		}
	}
	if ex := extract(rest, b); ex.ok {
		return ex.answer, true
	}
	return "", false
}

type markerKind int

const (
	markerAny       markerKind = iota // the answer follows directly
	markerColonOrIs                   // the answer follows ":" or "is"
)

// afterMarker finds the last occurrence of marker (lower-case) in lower
// that is followed by an answer, and returns the refined answer and where
// the marker is.
func afterMarker(t, lower, marker string, kind markerKind, b *budget) (string, int, bool) {
	for _, i := range lastOccurrences(lower, marker, maxMarkerScan) {
		b.tick(1)
		j := i + len(marker)
		if marker == "answer is" && i >= 6 && lower[i-6:i] == "final " {
			continue // tier 2 already looked at it
		}
		if marker != "####" && !wordBoundaryBefore(lower, i) {
			continue
		}
		if kind == markerColonOrIs {
			k := skipSpacesStars(lower, j)
			switch {
			case k < len(lower) && lower[k] == ':':
				j = k + 1
			case strings.HasPrefix(lower[k:], "is"):
				j = k + 2
				if k2 := skipSpacesStars(lower, j); k2 < len(lower) && lower[k2] == ':' {
					j = k2 + 1
				}
			default:
				continue
			}
		} else if k := skipSpacesStars(lower, j); k < len(lower) && lower[k] == ':' {
			j = k + 1
		}
		if a, ok := refine(t[j:], 0, b); ok {
			return a, i, true
		}
	}
	return "", -1, false
}

func wordBoundaryBefore(s string, i int) bool {
	if i == 0 {
		return true
	}
	c := s[i-1]
	return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9')
}

func skipSpacesStars(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '*') {
		i++
	}
	return i
}

// answerColon finds the last "Answer:" (also "**Answer:**") or line that
// starts with "A:", and returns its answer and position.
func answerColon(t, lower string, b *budget) (string, int, bool) {
	best, at := -1, -1 // where the answer starts, where the marker starts
	for _, i := range lastOccurrences(lower, "answer", maxMarkerScan) {
		k := skipSpacesStars(lower, i+len("answer"))
		if i >= 6 && lower[i-6:i] == "final " {
			continue // "Final Answer:" is a final_answer statement
		}
		if k < len(lower) && lower[k] == ':' && startsLine(lower, i) {
			best, at = k+1, i
			break
		}
	}
	// A line starting with "A:" (GSM8K example solutions end "A: 18").
	for _, i := range lastOccurrences(t, "A:", maxMarkerScan*4) {
		if i+2 <= best {
			break
		}
		j := i - 1
		for j >= 0 && (t[j] == ' ' || t[j] == '\t' || t[j] == '*') {
			j--
		}
		if (j < 0 || t[j] == '\n') && i+2 < len(t) && (t[i+2] == ' ' || t[i+2] == '\t') {
			best, at = i+2, i
			break
		}
	}
	if best < 0 {
		return "", -1, false
	}
	b.tick(1)
	a, ok := refine(t[best:], 0, b)
	return a, at, ok
}

// answerHeading finds the last markdown heading "# Answer" (one to six
// '#', any case, an optional colon, nothing else on its line) and returns
// the answer on the next non-blank line, and the heading's position: the
// PRM800K solution format ("...\n\n# Answer\n\n585000").
func answerHeading(t, lower string, b *budget) (string, int, bool) {
	for _, i := range lastOccurrences(lower, "answer", maxMarkerScan) {
		j := strings.LastIndexByte(lower[:i], '\n') + 1
		head := strings.TrimRight(strings.TrimLeft(lower[j:i], " \t"), " \t")
		if n := len(head); n < 1 || n > 6 || strings.Trim(head, "#") != "" {
			continue
		}
		k := i + len("answer")
		for k < len(lower) && (lower[k] == ' ' || lower[k] == '\t' || lower[k] == ':' || lower[k] == '\r') {
			k++
		}
		if k < len(lower) && lower[k] != '\n' {
			continue // "# Answer the question" is not the heading
		}
		for k < len(t) && (t[k] == '\n' || t[k] == ' ' || t[k] == '\t' || t[k] == '\r') {
			k++
		}
		if k >= len(t) {
			return "", -1, false // a heading with nothing under it
		}
		b.tick(1)
		a, ok := refine(t[k:], 0, b)
		return a, j, ok
	}
	return "", -1, false
}

// startsLine reports whether the word at i begins its line or a sentence,
// after markdown ("**", "#", "-", ">") and "the", "my" or "correct":
// "Answer: 5" and "... wrong. **Correct answer:** 5" are statements, "we
// check our answer: ..." is not.
func startsLine(lower string, i int) bool {
	j := strings.LastIndexByte(lower[:i], '\n') + 1
	words := strings.Fields(lower[j:i])
	for len(words) > 0 {
		w := strings.Trim(words[len(words)-1], "*#->")
		if w != "" && w != "the" && w != "my" && w != "correct" {
			// A new sentence starts after ".", "!" or "?".
			return strings.HasSuffix(w, ".") || strings.HasSuffix(w, "!") || strings.HasSuffix(w, "?")
		}
		words = words[:len(words)-1]
	}
	return true
}

// choiceMarker finds "the correct option is (B)" or "option (B) is correct".
func choiceMarker(t, lower string, b *budget) (string, bool) {
	for _, m := range [...]string{"correct option is", "correct choice is", "correct option:", "correct choice:"} {
		if i := lastIndex(lower, m); i >= 0 {
			if a, ok := refine(t[i+len(m):], 0, b); ok {
				return a, true
			}
		}
	}
	for _, m := range [...]string{"option", "choice"} {
		i := lastIndex(lower, m)
		if i < 0 {
			continue
		}
		rest := lower[i+len(m):]
		if k := strings.Index(rest, "is correct"); k > 0 && k <= 6 {
			letter := strings.Trim(strings.TrimSpace(t[i+len(m):i+len(m)+k]), "()*")
			if len(letter) == 1 && letter[0] >= 'A' && letter[0] <= 'Z' {
				return letter, true
			}
		}
	}
	return "", false
}

// bareAnswer reads a short single-line text as its own answer.
func bareAnswer(t string, b *budget) (string, bool) {
	if len(t) > maxBareBytes {
		return "", false
	}
	spans := mathSpans(t, b)
	if newlineOutside(t, spans) || innerSentenceEnd(t, spans) {
		return "", false
	}
	if len(spans) == 1 {
		sp := spans[0]
		if hasLetterWord(t[:sp.start]) {
			a := strings.TrimSpace(t[sp.cs:sp.ce])
			return a, a != ""
		}
	}
	a := trimTrailingPunct(unwrap(t))
	return a, a != ""
}

func hasLetterWord(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			return true
		}
	}
	return false
}

func looksCutOff(t string, boxes []box) bool {
	for _, bx := range boxes {
		if !bx.closed {
			return true
		}
	}
	t = strings.TrimRight(t, " \t\r\n")
	if t == "" {
		return false
	}
	switch t[len(t)-1] {
	case '.', '!', '?', ')', ']', '}', '$', '>', '"', '\'', '*':
		return false
	}
	return true
}
