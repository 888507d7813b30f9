package mathgrade

import (
	"math/big"
	"strings"
)

type nodeKind uint8

const (
	nNum    nodeKind = iota // num, dec (decimal places written, -1 if none)
	nSym                    // s: name
	nInf                    // infinity
	nAdd                    // kids summed
	nMul                    // kids multiplied
	nNeg                    // -kids[0]
	nDiv                    // kids[0] / kids[1]
	nPow                    // kids[0] ^ kids[1]
	nFunc                   // s: function name, kids: arguments
	nPct                    // kids[0] percent
	nPM                     // kids[0] ± kids[1] (kids[0] nil for a leading ±); s: "pm" or "mp"
	nTuple                  // s: brackets "()", "[)", ... or ":" for a ratio
	nSet                    // \{ kids \}
	nList                   // s: connector "," ";" "and" "or" "pm"; alt: decimal-comma reading
	nUnion                  // kids: intervals and sets
	nRel                    // kids: sides; ops: relations between them
	nMatrix                 // kids: rows (nTuple with s "row"); s: environment
	nText                   // s: text
	nSum                    // s: "sum"/"prod"; ops[0]: index; kids: lo, hi, body
	nBase                   // s: digits; num: base
)

type node struct {
	kind nodeKind
	s    string
	ops  []string
	kids []*node
	num  *big.Rat
	dec  int
	alt  *node
}

// Parser limits.
const maxParseDepth = 120

type parseFail struct{}

type parser struct {
	toks     []token
	pos      int
	depth    int
	b        *budget
	textual  bool // a word that is not a unit or connector was seen
	absDepth int
}

// parseAnswer parses an answer. ok is false when the text is not a math
// answer (prose, or syntax the parser does not know); textual tells the
// caller that it read words.
func parseAnswer(s string, b *budget) (n *node, textual, ok bool) {
	toks, lexOK := lex(s, b)
	if !lexOK {
		return nil, false, false
	}
	p := &parser{toks: toks, b: b}
	defer func() {
		if r := recover(); r != nil {
			if _, isFail := r.(parseFail); !isFail {
				panic(r)
			}
			n, ok = nil, false
			textual = p.textual
		}
	}()
	if len(toks) == 0 {
		return nil, false, false
	}
	n = p.parseSemi()
	if p.peek().kind != tEOF {
		p.fail()
	}
	if p.textual {
		return nil, true, false
	}
	return n, false, true
}

func (p *parser) fail() { panic(parseFail{}) }

func (p *parser) peek() token {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return token{kind: tEOF}
}

func (p *parser) peekAt(k int) token {
	if p.pos+k < len(p.toks) {
		return p.toks[p.pos+k]
	}
	return token{kind: tEOF}
}

func (p *parser) next() token {
	t := p.peek()
	if p.pos < len(p.toks) {
		p.pos++
	}
	p.b.tick(1)
	return t
}

func (p *parser) expect(k tokKind) token {
	t := p.next()
	if t.kind != k {
		p.fail()
	}
	return t
}

func (p *parser) isOp(s string) bool {
	t := p.peek()
	return t.kind == tOp && t.s == s
}

func (p *parser) enter() {
	p.depth++
	if p.depth > maxParseDepth {
		p.fail()
	}
}

func (p *parser) leave() { p.depth-- }

// isConnector reports whether t is the word w ("and", "or") in text or
// plain words.
func isConnector(t token, w string) bool {
	if t.kind != tWord && t.kind != tText && !(t.kind == tOp && t.s == w) {
		return false
	}
	return strings.EqualFold(strings.TrimSpace(strings.Trim(t.s, ",")), w)
}

func listOf(conn string, kids []*node) *node {
	if len(kids) == 1 {
		return kids[0]
	}
	return &node{kind: nList, s: conn, kids: kids}
}

func (p *parser) parseSemi() *node {
	p.enter()
	defer p.leave()
	items := []*node{p.parseOr()}
	for p.peek().kind == tSemi {
		p.next()
		if k := p.peek().kind; k == tEOF || k == tRBrace || k == tRParen || k == tRBrack {
			break
		}
		items = append(items, p.parseOr())
	}
	return listOf(";", items)
}

func (p *parser) parseOr() *node {
	items := []*node{p.parseAnd()}
	for isConnector(p.peek(), "or") {
		p.next()
		items = append(items, p.parseAnd())
	}
	return flattenConn(listOf("or", items))
}

func (p *parser) parseAnd() *node {
	items := []*node{p.parseComma()}
	for isConnector(p.peek(), "and") {
		p.next()
		if p.peek().kind == tComma {
			p.next()
		}
		items = append(items, p.parseComma())
	}
	return flattenConn(listOf("and", items))
}

// flattenConn merges comma lists inside an "and"/"or" list: "21, 16 or 11"
// names three things.
func flattenConn(n *node) *node {
	if n.kind != nList || (n.s != "and" && n.s != "or") {
		return n
	}
	var kids []*node
	for _, k := range n.kids {
		if k.kind == nList && (k.s == "," || k.s == "and") {
			kids = append(kids, k.kids...)
		} else {
			kids = append(kids, k)
		}
	}
	n.kids = kids
	return n
}

func (p *parser) parseComma() *node {
	items := []*node{p.parseRel()}
	tight := false
	for p.peek().kind == tComma {
		t := p.next()
		tight = t.s == ",tight"
		if k := p.peek().kind; k == tEOF || isConnector(p.peek(), "and") || isConnector(p.peek(), "or") || k == tSemi {
			break
		}
		items = append(items, p.parseRel())
	}
	n := listOf(",", items)
	if n.kind == nList && len(items) == 2 && tight {
		n.alt = decimalComma(items[0], items[1])
	}
	return n
}

var relOps = map[string]bool{"=": true, "<": true, ">": true, "<=": true, ">=": true, "!=": true, "~=": true, "in": true}

func (p *parser) parseRel() *node {
	p.enter()
	defer p.leave()
	first := p.parseRatio()
	t := p.peek()
	if t.kind != tOp || !relOps[t.s] {
		return first
	}
	n := &node{kind: nRel, kids: []*node{first}}
	for {
		t := p.peek()
		if t.kind != tOp || !relOps[t.s] {
			break
		}
		p.next()
		n.ops = append(n.ops, t.s)
		n.kids = append(n.kids, p.parseRatio())
	}
	return n
}

func (p *parser) parseRatio() *node {
	first := p.parseUnion()
	if p.peek().kind != tColon {
		return first
	}
	n := &node{kind: nTuple, s: ":", kids: []*node{first}}
	for p.peek().kind == tColon {
		p.next()
		n.kids = append(n.kids, p.parseUnion())
	}
	return n
}

func (p *parser) parseUnion() *node {
	first := p.parseSum()
	if !p.isOp("cup") {
		if p.isOp("cap") || p.isOp("setminus") {
			p.fail()
		}
		return first
	}
	n := &node{kind: nUnion, kids: []*node{first}}
	for p.isOp("cup") {
		p.next()
		n.kids = append(n.kids, p.parseSum())
	}
	return n
}

func (p *parser) parseSum() *node {
	p.enter()
	defer p.leave()
	var e *node
	if p.isOp("pm") || p.isOp("mp") {
		op := p.next().s
		e = &node{kind: nPM, s: op, kids: []*node{nil, p.parseTerm()}}
	} else {
		e = p.parseTerm()
	}
	for {
		t := p.peek()
		if t.kind != tOp {
			return e
		}
		switch t.s {
		case "+":
			p.next()
			e = addNodes(e, p.parseTerm())
		case "-":
			p.next()
			e = addNodes(e, &node{kind: nNeg, kids: []*node{p.parseTerm()}})
		case "pm", "mp":
			p.next()
			e = &node{kind: nPM, s: t.s, kids: []*node{e, p.parseTerm()}}
		default:
			return e
		}
	}
}

func addNodes(a, b *node) *node {
	if a.kind == nAdd {
		a.kids = append(a.kids, b)
		return a
	}
	return &node{kind: nAdd, kids: []*node{a, b}}
}

func mulNodes(a, b *node) *node {
	if a.kind == nMul {
		a.kids = append(a.kids, b)
		return a
	}
	return &node{kind: nMul, kids: []*node{a, b}}
}

var percentWords = map[string]bool{"percent": true, "pct": true, "percentage": true, "percents": true}

var scaleWords = map[string]int{"thousand": 3, "million": 6, "billion": 9, "trillion": 12}

func (p *parser) parseTerm() *node {
	p.enter()
	defer p.leave()
	e := p.parseUnary()
	for {
		t := p.peek()
		switch {
		case t.kind == tOp && t.s == "*":
			p.next()
			e = mulNodes(e, p.parseUnary())
		case t.kind == tOp && t.s == "/":
			p.next()
			e = &node{kind: nDiv, kids: []*node{e, p.parseUnary()}}
		case t.kind == tWord || t.kind == tText:
			w := strings.ToLower(strings.TrimSpace(t.s))
			switch {
			case w == "and" || w == "or":
				return e
			case percentWords[w]:
				p.next()
				e = &node{kind: nPct, kids: []*node{e}}
			case scaleWords[w] > 0:
				p.next()
				e = mulNodes(e, &node{kind: nNum, num: new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scaleWords[w])), nil)), dec: -1})
			default:
				p.skipUnit()
			}
		case t.kind == tDeg:
			p.next()
		case t.kind == tPercent:
			p.next()
			e = &node{kind: nPct, kids: []*node{e}}
		case p.startsImplicit(t):
			e = mulNodes(e, p.parsePower())
		default:
			return e
		}
	}
}

// skipUnit consumes unit words after a quantity: "cm^2", "m/s",
// "square feet".
func (p *parser) skipUnit() {
	for {
		t := p.peek()
		if t.kind != tWord && t.kind != tText {
			return
		}
		w := strings.ToLower(strings.TrimSpace(t.s))
		if w == "and" || w == "or" || percentWords[w] {
			return
		}
		p.next()
		if p.isOp("^") && p.peekAt(1).kind == tNum {
			p.next()
			p.next()
		}
		if p.isOp("/") && (p.peekAt(1).kind == tWord || p.peekAt(1).kind == tText) {
			p.next()
		}
	}
}

func (p *parser) startsImplicit(t token) bool {
	switch t.kind {
	case tNum, tIdent, tLParen, tBegin:
		return true
	case tCmd:
		return t.s != "rfloor" && t.s != "rceil"
	case tBar:
		return p.absDepth == 0
	}
	return false
}

func (p *parser) parseUnary() *node {
	p.enter()
	defer p.leave()
	if p.isOp("-") {
		p.next()
		return &node{kind: nNeg, kids: []*node{p.parseUnary()}}
	}
	if p.isOp("+") {
		p.next()
		return p.parseUnary()
	}
	return p.parsePower()
}

func (p *parser) parsePower() *node {
	p.enter()
	defer p.leave()
	base := p.parsePostfix()
	for p.isOp("^") {
		p.next()
		if p.peek().kind == tDeg {
			p.next()
			continue
		}
		if p.peek().kind == tLBrace && p.peekAt(1).kind == tDeg && p.peekAt(2).kind == tRBrace {
			p.pos += 3
			continue
		}
		exp := p.parseExponent()
		base = &node{kind: nPow, kids: []*node{base, exp}}
		base = p.postfixOps(base)
	}
	return base
}

// parseExponent reads what follows "^": a group, a signed primary, or one
// token.
func (p *parser) parseExponent() *node {
	t := p.peek()
	switch {
	case t.kind == tLBrace:
		p.next()
		e := p.parseSemi()
		p.expect(tRBrace)
		return e
	case t.kind == tOp && (t.s == "-" || t.s == "+"):
		p.next()
		e := p.parsePostfix()
		if t.s == "-" {
			return &node{kind: nNeg, kids: []*node{e}}
		}
		return e
	}
	return p.parsePostfix()
}

func (p *parser) parsePostfix() *node {
	return p.postfixOps(p.parsePrimary())
}

func (p *parser) postfixOps(e *node) *node {
	for {
		t := p.peek()
		switch {
		case t.kind == tOp && t.s == "!":
			p.next()
			e = &node{kind: nFunc, s: "factorial", kids: []*node{e}}
		case t.kind == tPercent:
			p.next()
			e = &node{kind: nPct, kids: []*node{e}}
		case t.kind == tDeg:
			p.next()
		case t.kind == tOp && t.s == "'":
			p.next()
			if e.kind == nSym {
				e = &node{kind: nSym, s: e.s + "'"}
			} else if e.kind == nFunc && isUninterpreted(e.s) {
				e = &node{kind: nFunc, s: e.s + "'", kids: e.kids}
			}
		case t.kind == tOp && t.s == "_":
			p.next()
			e = p.subscript(e)
		default:
			return e
		}
	}
}

// subscript attaches "_sub" to e: a number base (204_5), a name suffix
// (a_3, x_{12}) or an index (F_{n-1}).
func (p *parser) subscript(e *node) *node {
	sub := p.parseSubArg()
	if e.kind == nNum && e.dec < 0 && e.s != "" && sub.kind == nNum && sub.num.IsInt() {
		base := sub.num.Num().Int64()
		if base >= 2 && base <= 36 {
			if _, ok := new(big.Int).SetString(e.s, int(base)); ok {
				return &node{kind: nBase, s: e.s, num: new(big.Rat).SetInt64(base)}
			}
		}
		p.fail()
	}
	if e.kind == nSym {
		if k := simpleKey(sub); k != "" {
			return &node{kind: nSym, s: e.s + "_" + k}
		}
		return &node{kind: nFunc, s: "_" + e.s, kids: []*node{sub}}
	}
	if e.kind == nFunc && isUninterpreted(e.s) {
		return e
	}
	// Other subscripts (limits of \max, ...) carry no value we compare.
	return e
}

// simpleKey returns a name suffix for a subscript made of digits and
// letters, "" otherwise.
func simpleKey(n *node) string {
	switch n.kind {
	case nNum:
		if n.dec < 0 && n.s != "" {
			return n.s
		}
	case nSym:
		return n.s
	case nMul:
		var sb strings.Builder
		for _, k := range n.kids {
			s := simpleKey(k)
			if s == "" {
				return ""
			}
			sb.WriteString(s)
		}
		return sb.String()
	}
	return ""
}

func (p *parser) parseSubArg() *node {
	t := p.peek()
	if t.kind == tWord {
		p.next()
		return &node{kind: nSym, s: t.s}
	}
	// A subscript of letters and digits, such as {MBCN} or {37}, is a name.
	if t.kind == tLBrace {
		var sb strings.Builder
		k, words := 1, 0
		for ; ; k++ {
			tk := p.peekAt(k)
			if tk.kind == tWord || tk.kind == tIdent || tk.kind == tNum && !strings.ContainsAny(tk.s, ".eE") {
				if tk.kind == tWord {
					words++
				}
				sb.WriteString(tk.s)
				continue
			}
			break
		}
		if words > 0 && p.peekAt(k).kind == tRBrace {
			p.pos += k + 1
			return &node{kind: nSym, s: sb.String()}
		}
	}
	if t.kind == tLBrace {
		p.next()
		e := p.parseSemi()
		p.expect(tRBrace)
		return e
	}
	if t.kind == tNum {
		p.next()
		return numNode(t.s, p)
	}
	if t.kind == tIdent {
		p.next()
		return &node{kind: nSym, s: t.s}
	}
	return p.parsePrimary()
}

// isUninterpreted reports names that, followed by "(", are read as a
// function application rather than a product.
func isUninterpreted(name string) bool {
	if strings.HasSuffix(name, "'") {
		return true
	}
	switch name {
	case "f", "g", "h", "p", "q", "F", "G", "H", "P", "Q", "W", "S", "T", "N", "L", "R", "D":
		return true
	}
	return false
}

func (p *parser) parsePrimary() *node {
	p.enter()
	defer p.leave()
	t := p.next()
	switch t.kind {
	case tNum:
		n := numNode(t.s, p)
		// A mixed number: 918\frac{1}{2}.
		if n.dec < 0 && n.s != "" && p.peek().kind == tCmd && p.peek().s == "frac" {
			save := p.pos
			p.next()
			a, b := p.parseArg(), p.parseArg()
			if a.kind == nNum && b.kind == nNum && a.dec < 0 && b.dec < 0 && b.num.Sign() != 0 {
				v := new(big.Rat).Quo(a.num, b.num)
				return &node{kind: nNum, num: v.Add(v, n.num), dec: -1}
			}
			p.pos = save
		}
		return n
	case tIdent:
		switch t.s {
		case "inf":
			return &node{kind: nInf}
		}
		n := &node{kind: nSym, s: t.s}
		if p.peek().kind == tOp && p.peek().s == "'" {
			p.next()
			n.s += "'"
		}
		if p.peek().kind == tLParen && isUninterpreted(n.s) {
			p.next()
			args := p.parseElems()
			if p.next().kind != tRParen {
				p.fail()
			}
			return &node{kind: nFunc, s: n.s, kids: args}
		}
		return n
	case tCmd:
		return p.parseCommand(t.s)
	case tLParen, tLBrack:
		return p.parseBracketed(t)
	case tLBrace:
		if p.peek().kind == tRBrace {
			p.next()
			return p.parsePrimary()
		}
		e := p.parseSemi()
		p.expect(tRBrace)
		return e
	case tLSet:
		n := &node{kind: nSet}
		if p.peek().kind != tRSet {
			n.kids = p.parseSetElems()
		}
		p.expect(tRSet)
		return n
	case tBar:
		p.absDepth++
		e := p.parseSum()
		p.absDepth--
		p.expect(tBar)
		return &node{kind: nFunc, s: "abs", kids: []*node{e}}
	case tBegin:
		return p.parseMatrix(t.s)
	case tText:
		s := strings.TrimSpace(t.s)
		if len(s) == 1 && isASCIILetter(s[0]) {
			return &node{kind: nSym, s: s}
		}
		p.textual = true
		return &node{kind: nText, s: s}
	case tWord:
		p.textual = true
		return &node{kind: nText, s: t.s}
	}
	p.fail()
	return nil
}
