package mathgrade

import (
	"math/big"
	"strings"
)

// parseElems reads comma- or semicolon-separated elements up to a closing
// bracket (not consumed).
func (p *parser) parseElems() []*node {
	var elems []*node
	for {
		elems = append(elems, p.parseRelOrList())
		if k := p.peek().kind; k == tComma || k == tSemi {
			p.next()
			continue
		}
		return elems
	}
}

// parseRelOrList reads one element of a tuple; "a or b" inside a tuple
// stays one element.
func (p *parser) parseRelOrList() *node {
	e := p.parseRel()
	if isConnector(p.peek(), "or") || isConnector(p.peek(), "and") {
		items := []*node{e}
		conn := strings.ToLower(strings.TrimSpace(p.peek().s))
		for isConnector(p.peek(), conn) {
			p.next()
			items = append(items, p.parseRel())
		}
		return listOf(conn, items)
	}
	return e
}

func (p *parser) parseSetElems() []*node {
	var elems []*node
	for {
		e := p.parseRelOrList()
		if e.kind == nList && (e.s == "and" || e.s == "or") {
			elems = append(elems, e.kids...)
		} else {
			elems = append(elems, e)
		}
		if k := p.peek().kind; k == tComma || k == tSemi {
			p.next()
			if p.peek().kind == tRSet {
				return elems
			}
			continue
		}
		return elems
	}
}

func (p *parser) parseBracketed(open token) *node {
	closeKind := p.peek().kind
	if closeKind == tRParen || closeKind == tRBrack {
		p.next()
		return &node{kind: nTuple, s: open.s + p.toks[p.pos-1].s}
	}
	elems := p.parseElems()
	cl := p.next()
	if cl.kind != tRParen && cl.kind != tRBrack {
		p.fail()
	}
	if len(elems) == 1 && (open.kind == tLParen) == (cl.kind == tRParen) {
		return elems[0]
	}
	return &node{kind: nTuple, s: open.s + cl.s, kids: elems}
}

func (p *parser) parseMatrix(env string) *node {
	switch env {
	case "matrix", "pmatrix", "bmatrix", "Bmatrix", "vmatrix", "Vmatrix", "smallmatrix", "array", "tabular":
	default:
		p.fail()
	}
	n := &node{kind: nMatrix, s: env}
	var row []*node
	for {
		t := p.peek()
		switch t.kind {
		case tEnd:
			p.next()
			if len(row) > 0 {
				n.kids = append(n.kids, &node{kind: nTuple, s: "row", kids: row})
			}
			return p.checkMatrix(n)
		case tRowSep:
			p.next()
			if len(row) > 0 {
				n.kids = append(n.kids, &node{kind: nTuple, s: "row", kids: row})
			}
			row = nil
		case tAmp:
			p.next()
		case tEOF:
			p.fail()
		default:
			row = append(row, p.parseRel())
		}
	}
}

func (p *parser) checkMatrix(n *node) *node {
	if len(n.kids) == 0 {
		p.fail()
	}
	w := len(n.kids[0].kids)
	for _, r := range n.kids {
		if len(r.kids) != w {
			p.fail()
		}
	}
	return n
}

// parseArg reads one argument of \frac, \sqrt or \binom: a group, or a
// single token (one digit of a digit run: \frac12 is 1/2).
func (p *parser) parseArg() *node {
	t := p.peek()
	switch t.kind {
	case tLBrace:
		p.next()
		e := p.parseSemi()
		p.expect(tRBrace)
		return e
	case tNum:
		if len(t.s) > 1 && isDigit(t.s[0]) && isDigit(t.s[1]) {
			p.toks[p.pos].s = t.s[1:]
			return numNode(t.s[:1], p)
		}
		p.next()
		return numNode(t.s, p)
	case tIdent:
		p.next()
		if t.s == "inf" {
			return &node{kind: nInf}
		}
		return &node{kind: nSym, s: t.s}
	case tCmd:
		p.next()
		return p.parseCommand(t.s)
	}
	p.fail()
	return nil
}

func (p *parser) parseCommand(name string) *node {
	switch name {
	case "frac":
		a := p.parseArg()
		b := p.parseArg()
		return &node{kind: nDiv, kids: []*node{a, b}}
	case "binom":
		a := p.parseArg()
		b := p.parseArg()
		return &node{kind: nFunc, s: "binom", kids: []*node{a, b}}
	case "sqrt":
		if p.peek().kind == tLBrack {
			p.next()
			idx := p.parseSum()
			p.expect(tRBrack)
			arg := p.parseArg()
			return &node{kind: nFunc, s: "root", kids: []*node{arg, idx}}
		}
		if p.peek().kind == tLParen {
			p.next()
			e := p.parseSemi()
			p.expect(tRParen)
			return &node{kind: nFunc, s: "sqrt", kids: []*node{e}}
		}
		return &node{kind: nFunc, s: "sqrt", kids: []*node{p.parseArg()}}
	case "lfloor", "lceil":
		e := p.parseSum()
		t := p.next()
		if t.kind != tCmd || (name == "lfloor") != (t.s == "rfloor") {
			p.fail()
		}
		if name == "lfloor" {
			return &node{kind: nFunc, s: "floor", kids: []*node{e}}
		}
		return &node{kind: nFunc, s: "ceil", kids: []*node{e}}
	case "sum", "prod":
		return p.parseBigOp(name)
	case "gcd", "lcm", "max", "min":
		p.expect(tLParen)
		args := p.parseElems()
		p.expect(tRParen)
		return &node{kind: nFunc, s: name, kids: args}
	case "rfloor", "rceil", "choose", "det":
		p.fail()
	}
	return p.parseFunc(name)
}

// parseFunc reads sin x, \sin^2(x), \log_2 8, \ln(x+1).
func (p *parser) parseFunc(name string) *node {
	var power, base *node
	for {
		if p.isOp("^") && power == nil {
			p.next()
			power = p.parseExponent()
			continue
		}
		if p.isOp("_") && base == nil && (name == "log") {
			p.next()
			base = p.parseSubArg()
			continue
		}
		break
	}
	var arg *node
	if p.peek().kind == tLParen {
		p.next()
		arg = p.parseSemi()
		p.expect(tRParen)
	} else {
		arg = p.parsePower()
		if arg.kind == nNum && p.peek().kind == tIdent {
			arg = mulNodes(arg, p.parsePower())
		}
	}
	f := &node{kind: nFunc, s: name, kids: []*node{arg}}
	if base != nil {
		f = &node{kind: nFunc, s: "logb", kids: []*node{arg, base}}
	}
	if power != nil {
		if power.kind == nNeg && len(power.kids) == 1 && power.kids[0].kind == nNum && power.kids[0].num.Cmp(big.NewRat(1, 1)) == 0 {
			switch name {
			case "sin", "cos", "tan":
				return &node{kind: nFunc, s: "arc" + name, kids: []*node{arg}}
			}
		}
		return &node{kind: nPow, kids: []*node{f, power}}
	}
	return f
}

// parseBigOp reads \sum_{k=a}^{b} body and \prod likewise.
func (p *parser) parseBigOp(name string) *node {
	if !p.isOp("_") {
		p.fail()
	}
	p.next()
	p.expect(tLBrace)
	idx := p.expect(tIdent)
	if !p.isOp("=") {
		p.fail()
	}
	p.next()
	lo := p.parseSum()
	p.expect(tRBrace)
	if !p.isOp("^") {
		p.fail()
	}
	p.next()
	hi := p.parseSubArg()
	body := p.parseTerm()
	return &node{kind: nSum, s: name, ops: []string{idx.s}, kids: []*node{lo, hi, body}}
}
