package mathgrade

import (
	"fmt"
	"strings"
)

// comparer compares two extracted answers within one Grade call's budget.
type comparer struct {
	b         *budget
	maxAnswer int
}

// verdict is the outcome of comparing two answers.
type verdict struct {
	eq         bool
	rule       string
	reason     string
	pred, gold string
}

// cmp is the outcome of comparing two parsed answers: the kind of
// comparison that decided, and why not when !eq.
type cmp struct {
	eq   bool
	kind string
	why  string
}

func yes(kind string) cmp { return cmp{eq: true, kind: kind} }

func no(kind, why string) cmp { return cmp{kind: kind, why: why} }

func (r cmp) withKind(k string) cmp { r.kind = k; return r }

// cleanAnswer trims an answer and strips one enclosing math span.
func cleanAnswer(s string) string {
	return strings.TrimSpace(unwrap(strings.TrimSpace(s)))
}

func (c *comparer) compareAnswers(pred, gold string) verdict {
	ps, gs := cleanAnswer(pred), cleanAnswer(gold)
	v := verdict{pred: ps, gold: gs}
	done := func(r cmp) verdict {
		v.eq = r.eq
		if r.eq {
			v.rule = "equal:" + r.kind
			return v
		}
		if r.kind == "ambiguous" {
			v.rule = "no_answer:ambiguous"
		} else {
			v.rule = "not_equal:" + r.kind
		}
		v.reason = r.why
		return v
	}
	if ps == "" {
		return done(no("empty", "the stated answer is empty"))
	}
	if sq := squash(ps); sq != "" && sq == squash(gs) {
		return done(yes("string"))
	}
	// Multiple choice.
	if gl, ok := choiceLetter(gs); ok {
		pl, pok := choiceLetter(ps)
		if !pok {
			pl, pok = leadingChoice(ps)
		}
		if pok {
			v.pred, v.gold = "("+string(pl)+")", "("+string(gl)+")"
			if pl == gl {
				return done(yes("choice"))
			}
			return done(no("choice", fmt.Sprintf("the response chose (%c), the reference is (%c)", pl, gl)))
		}
	}
	if len(ps) > c.maxAnswer || len(gs) > c.maxAnswer {
		pt, gt := normText(ps), normText(gs)
		v.pred, v.gold = clip(pt, 200), clip(gt, 200)
		if pt == gt {
			return done(yes("text"))
		}
		return done(no("text", "the answer is too long to parse and differs from the reference as text"))
	}
	if n, ok := numberWords(ps); ok {
		ps = n
	}
	if n, ok := numberWords(gs); ok {
		gs = n
	}
	pn, _, pok := parseAnswer(ps, c.b)
	gn, _, gok := parseAnswer(gs, c.b)
	if !pok || !gok {
		pt, gt := normText(ps), normText(gs)
		v.pred, v.gold = pt, gt
		if pt != "" && pt == gt {
			return done(yes("text"))
		}
		return done(no("text", fmt.Sprintf("the answer %q differs from the reference %q as text", clip(pt, 60), clip(gt, 60))))
	}
	v.pred, v.gold = pn.String(), gn.String()
	return done(c.equiv(pn, gn, 0))
}

const maxCompareDepth = 30

// equiv compares a predicted answer p with a reference g by value.
func (c *comparer) equiv(p, g *node, d int) cmp {
	c.b.tick(1)
	if d > maxCompareDepth {
		return no("too_deep", "the answers are nested too deeply to compare")
	}
	p, g = reduceRel(p), reduceRel(g)
	if p.kind != nList && p.kind != nSet {
		p = expandPM(p)
	}
	if g.kind != nList && g.kind != nSet {
		g = expandPM(g)
	}
	switch {
	case p.kind == nRel || g.kind == nRel:
		return c.relEquiv(p, g, d)
	case isCollection(p) || isCollection(g):
		return c.collEquiv(p, g, d)
	case p.kind == nUnion || g.kind == nUnion:
		return c.unionEquiv(p, g, d)
	case p.kind == nTuple || g.kind == nTuple:
		return c.tupleEquiv(p, g, d)
	case hasMatrix(p) || hasMatrix(g):
		return c.matrixEquiv(p, g, d)
	}
	return c.scalarEquiv(p, g)
}

func isCollection(n *node) bool { return n.kind == nList || n.kind == nSet }

func hasMatrix(n *node) bool {
	if n == nil {
		return false
	}
	if n.kind == nMatrix {
		return true
	}
	if n.kind == nAdd || n.kind == nMul || n.kind == nNeg || n.kind == nDiv {
		for _, k := range n.kids {
			if hasMatrix(k) {
				return true
			}
		}
	}
	return false
}

func (c *comparer) unionEquiv(p, g *node, d int) cmp {
	pu, pok := toUnion(p)
	gu, gok := toUnion(g)
	if !pok || !gok {
		return no("interval", "the answer and the reference are not the same kind of set")
	}
	return c.unionsEqual(pu, gu, d)
}

func (c *comparer) tupleEquiv(p, g *node, d int) cmp {
	if p.kind == nTuple && g.kind == nTuple {
		if len(p.kids) != len(g.kids) {
			return no("tuple", fmt.Sprintf("the answer has %d components and the reference %d", len(p.kids), len(g.kids)))
		}
		if isIntervalTuple(p) && isIntervalTuple(g) && p.s != g.s {
			return no("interval", fmt.Sprintf("the brackets differ: %s versus %s", p.s, g.s))
		}
		kind := "tuple"
		if p.s == ":" || g.s == ":" {
			kind = "ratio"
		} else if isIntervalTuple(p) && p.s != "()" {
			kind = "interval"
		}
		return c.ordered(p.kids, g.kids, d).withKind(kind)
	}
	// A vector written as a one-column or one-row matrix.
	t, m := p, g
	if p.kind != nTuple {
		t, m = g, p
	}
	if m.kind == nMatrix {
		if v := matrixVector(m); v != nil {
			if t == p {
				return c.ordered(t.kids, v, d).withKind("tuple")
			}
			return c.ordered(v, t.kids, d).withKind("tuple")
		}
	}
	return no("tuple", "a tuple is compared with a single value")
}

func matrixVector(m *node) []*node {
	if len(m.kids) == 1 {
		return m.kids[0].kids
	}
	var out []*node
	for _, r := range m.kids {
		if len(r.kids) != 1 {
			return nil
		}
		out = append(out, r.kids[0])
	}
	return out
}

func (c *comparer) matrixEquiv(p, g *node, d int) cmp {
	if p.kind == nMatrix && g.kind == nMatrix {
		if len(p.kids) != len(g.kids) || len(p.kids[0].kids) != len(g.kids[0].kids) {
			return no("matrix", "the matrices have different shapes")
		}
		for i := range p.kids {
			for j := range p.kids[i].kids {
				if r := c.equiv(p.kids[i].kids[j], g.kids[i].kids[j], d+1); !r.eq {
					return no("matrix", fmt.Sprintf("entry (%d,%d) differs", i+1, j+1))
				}
			}
		}
		return yes("matrix")
	}
	// Matrix arithmetic: evaluate both sides entry by entry.
	vars := map[string]bool{}
	freeVars(p, nil, vars)
	freeVars(g, nil, vars)
	pts := numPoints
	if len(vars) == 0 {
		pts = 1
	}
	for pt := 0; pt < pts; pt++ {
		env := &evalEnv{point: pt, b: c.b}
		a, err1 := env.evalMatrix(p)
		b, err2 := env.evalMatrix(g)
		if err1 != nil || err2 != nil {
			return no("matrix", "the matrix expression could not be evaluated")
		}
		if a.rows != b.rows || a.cols != b.cols {
			return no("matrix", "the matrices have different shapes")
		}
		for i := range a.el {
			if eq, _ := eqValues(a.el[i], b.el[i]); !eq {
				return no("matrix", "the matrices differ")
			}
		}
	}
	return yes("matrix")
}
