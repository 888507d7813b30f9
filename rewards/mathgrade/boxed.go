package mathgrade

import "strings"

// box is one \boxed{...} or \fbox{...} occurrence.
type box struct {
	start, end int    // the whole command
	content    string // what is inside
	cmd        string // "boxed" or "fbox"
	closed     bool   // braces balanced
}

// lastBoxes returns up to maxMarkerScan boxes, the last ones in the text,
// in text order. Each brace scan stops at the end of the text, so the
// work is bounded by maxMarkerScan*len(t).
func lastBoxes(t string, b *budget) []box {
	var rev []box
	// Search for the command names without the backslash: "\\" is the most
	// common byte in LaTeX and would stall the vectorised search.
	bs := commandOccurrences(t, "boxed")
	fs := commandOccurrences(t, "fbox")
	for len(rev) < maxMarkerScan && (len(bs) > 0 || len(fs) > 0) {
		var i int
		cmd := "boxed"
		if len(fs) > 0 && (len(bs) == 0 || fs[0] > bs[0]) {
			i, fs, cmd = fs[0], fs[1:], "fbox"
		} else {
			i, bs = bs[0], bs[1:]
		}
		j := i + 1 + len(cmd)
		if j < len(t) && isASCIILetter(t[j]) {
			continue // some other command, e.g. \boxedanswer
		}
		b.tick(1)
		bx := box{start: i, cmd: cmd}
		k := j
		for k < len(t) && (t[k] == ' ' || t[k] == '\t') {
			k++
		}
		switch {
		case k < len(t) && t[k] == '{':
			m := matchBrace(t, k)
			b.tick((len(t) - k) / 256)
			if m < 0 {
				bx.end = len(t)
				bx.content = t[k+1:]
			} else {
				bx.end = m + 1
				bx.content = t[k+1 : m]
				bx.closed = true
			}
		case k > j && k < len(t):
			// "\boxed 5": one token up to white space or a math delimiter.
			m := k
			for m < len(t) && !strings.ContainsRune(" \t\n\r$", rune(t[m])) {
				if t[m] == '\\' && m+1 < len(t) && (t[m+1] == ')' || t[m+1] == ']') {
					break
				}
				m++
			}
			bx.end = m
			bx.content = t[k:m]
			bx.closed = true
		default:
			bx.end = k
			bx.closed = k < len(t)
		}
		rev = append(rev, bx)
	}
	for l, r := 0, len(rev)-1; l < r; l, r = l+1, r-1 {
		rev[l], rev[r] = rev[r], rev[l]
	}
	return rev
}

// commandOccurrences returns the positions of the last "\\"+name, latest
// first.
func commandOccurrences(t, name string) []int {
	var out []int
	for _, i := range lastOccurrences(t, name, maxMarkerScan) {
		if i > 0 && t[i-1] == '\\' {
			out = append(out, i-1)
		}
	}
	return out
}

// pickBoxes chooses the final answer from boxes: the last closed box, joined
// with the boxes before it that are separated from it only by connectors.
// why is "" on success, "empty_boxed" when the last box is empty, and
// "none" when there is no closed box; pos is where the last closed box
// starts (-1 when none).
func pickBoxes(t string, boxes []box) (answer, rule, why string, pos int) {
	last := -1
	for i := len(boxes) - 1; i >= 0; i-- {
		if boxes[i].closed {
			last = i
			break
		}
	}
	if last < 0 {
		return "", "", "none", -1
	}
	pos = boxes[last].start
	content := strings.TrimSpace(boxes[last].content)
	if content == "" {
		return "", "", "empty_boxed", pos
	}
	parts := []string{content}
	conns := []string{}
	cur := boxes[last]
	for i := last - 1; i >= 0; i-- {
		prev := boxes[i]
		if !prev.closed || prev.end > cur.start {
			break
		}
		conn, ok := boxJoin(t[prev.end:cur.start])
		c := strings.TrimSpace(prev.content)
		if !ok || c == "" {
			break
		}
		parts = append(parts, c)
		conns = append(conns, conn)
		cur = prev
	}
	if len(parts) == 1 {
		return content, boxes[last].cmd, "", pos
	}
	var sb strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		sb.WriteString(parts[i])
		if i > 0 {
			sb.WriteString(conns[i-1])
		}
	}
	return sb.String(), boxes[last].cmd, "", pos
}

var gapCleaner = strings.NewReplacer(`\qquad`, " ", `\quad`, " ", `\text`, " ", `\mbox`, " ",
	`\(`, " ", `\)`, " ", `\[`, " ", `\]`, " ", `\,`, " ", `\;`, " ", `\ `, " ", "$", " ", "{", " ", "}", " ")

// boxJoin decides whether the text between two boxes joins them into one
// answer, and with which connector.
func boxJoin(gap string) (string, bool) {
	if len(gap) > maxBoxGapBytes {
		return "", false
	}
	// Math delimiters and spacing commands between boxes carry no meaning.
	g := gapCleaner.Replace(asciiLower(gap))
	if sentenceEnd(g+" ", nil) >= 0 {
		return "", false
	}
	words := strings.FieldsFunc(g, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') })
	if len(words) == 0 {
		return ", ", true // "\boxed{1}, \boxed{2}" or adjacent boxes
	}
	// Words between boxes join them only around a connector and only a
	// few of them: "\boxed{1} papers and \boxed{2}".
	if len(words) > 5 {
		return "", false
	}
	for _, w := range words {
		if w == "or" {
			return " or ", true
		}
	}
	for _, w := range words {
		if w == "and" {
			return ", ", true
		}
	}
	return "", false
}
