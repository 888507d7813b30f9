package mathgrade

import (
	"math"
	"strings"
)

// isName reports an expression that names a quantity rather than giving
// its value: x, a_3, f(x), |AB|, AB, NO/BO, A:B, (p,q).
func isName(n *node) bool {
	switch n.kind {
	case nSym:
		return n.s != "pi" && n.s != "i"
	case nFunc:
		if n.s == "abs" {
			return isName(n.kids[0])
		}
		return isUninterpreted(n.s) || strings.HasPrefix(n.s, "_")
	case nMul, nTuple:
		if len(n.kids) == 0 || n.s == "row" {
			return false
		}
		for _, k := range n.kids {
			if !isName(k) {
				return false
			}
		}
		return true
	case nDiv:
		return isName(n.kids[0]) && isName(n.kids[1])
	}
	return false
}

// nameKey identifies a name; function arguments do not count, so W(n)
// and W(x) name the same function.
func nameKey(n *node) string {
	if n.kind == nFunc && n.s != "abs" {
		return n.s + "()"
	}
	return n.String()
}

// reduceRel simplifies a derivation chain to what it concludes:
// "x = 5+5+1 = 11" to "x = 11", "1 = y = 0" to 0, "x = 1/3 ≈ 0.33" to
// "x = 1/3" and "√3/3 ≈ 0.577" to √3/3.
func reduceRel(n *node) *node {
	if n.kind != nRel {
		return n
	}
	approx := false
	allEq := true
	for _, op := range n.ops {
		switch op {
		case "~=":
			approx = true
		case "=":
		default:
			allEq = false
		}
	}
	if !approx && (!allEq || len(n.kids) <= 2) {
		return n
	}
	if approx {
		// Keep only the sides joined by "=" from the start.
		k := 0
		for k < len(n.ops) && n.ops[k] == "=" {
			k++
		}
		for _, op := range n.ops[k:] {
			if op != "~=" && op != "=" {
				return n // an inequality after an approximation: leave it
			}
		}
		if k == 0 {
			if isName(n.kids[0]) {
				if len(n.kids) == 2 {
					return &node{kind: nRel, ops: []string{"="}, kids: []*node{n.kids[0], n.kids[1]}}
				}
				return n.kids[1]
			}
			return n.kids[0]
		}
		if isName(n.kids[0]) {
			return &node{kind: nRel, ops: []string{"="}, kids: []*node{n.kids[0], n.kids[k]}}
		}
		return n.kids[k]
	}
	last := n.kids[len(n.kids)-1]
	if isName(n.kids[0]) {
		return &node{kind: nRel, ops: []string{"="}, kids: []*node{n.kids[0], last}}
	}
	return last
}

// valueOf returns the value a two-sided equation states: the side that is
// not a name.
func valueOf(r *node) *node {
	if isName(r.kids[1]) && !isName(r.kids[0]) {
		return r.kids[0]
	}
	return r.kids[len(r.kids)-1]
}

func isAssignment(r *node) bool {
	return len(r.ops) == 1 && r.ops[0] == "=" && (isName(r.kids[0]) || isName(r.kids[1]))
}

func isInequality(r *node) bool {
	for _, op := range r.ops {
		switch op {
		case "<", "<=", ">", ">=", "!=":
			return true
		}
	}
	return false
}

func (c *comparer) relEquiv(p, g *node, d int) cmp {
	if p.kind == nRel && g.kind == nRel {
		ps, pu, pok := relToUnion(p)
		gs, gu, gok := relToUnion(g)
		if pok && gok {
			if ps == gs || p.ops[0] == "in" || g.ops[0] == "in" {
				return c.unionsEqual(pu, gu, d).withKind("relation")
			}
		}
		if len(p.ops) == 1 && len(g.ops) == 1 {
			return c.simpleRelEquiv(p, g, d)
		}
		if p.String() == g.String() {
			return yes("relation")
		}
		return no("relation", "")
	}
	if p.kind == nRel {
		if len(p.ops) == 1 && p.ops[0] == "in" {
			return c.equiv(p.kids[1], g, d+1)
		}
		if isInequality(p) {
			if _, pu, ok := relToUnion(p); ok {
				if gu, ok := toUnion(g); ok {
					return c.unionsEqual(pu, gu, d).withKind("relation")
				}
			}
			return no("relation", "the answer is an inequality and the reference is not")
		}
		return c.equiv(valueOf(p), g, d+1)
	}
	// g is a relation, p is not.
	if len(g.ops) == 1 && g.ops[0] == "in" {
		return c.equiv(p, g.kids[1], d+1)
	}
	if isInequality(g) {
		if _, gu, ok := relToUnion(g); ok {
			if pu, ok := toUnion(p); ok {
				return c.unionsEqual(pu, gu, d).withKind("relation")
			}
		}
		return no("relation", "the reference is an inequality and the answer is not")
	}
	if isAssignment(g) {
		return c.equiv(p, valueOf(g), d+1)
	}
	return no("equation", "the reference is an equation and the answer is not")
}

// simpleRelEquiv compares two one-operator relations.
func (c *comparer) simpleRelEquiv(p, g *node, d int) cmp {
	po, gop := p.ops[0], g.ops[0]
	if po == "=" && gop == "=" {
		pl, gl := p.kids[0], g.kids[0]
		if isName(pl) && isName(gl) {
			if nameKey(pl) == nameKey(gl) {
				r := c.equiv(p.kids[1], g.kids[1], d+1)
				if r.eq {
					return r
				}
				if !scalarSides(p) || !scalarSides(g) {
					return r
				}
			}
		}
		if scalarSides(p) && scalarSides(g) {
			return c.proportional(p, g, false).withKind("equation")
		}
		return no("equation", "the equations differ")
	}
	if po == "in" && gop == "in" {
		if nameKey(p.kids[0]) != nameKey(g.kids[0]) {
			return no("relation", "the relations are about different quantities")
		}
		return c.equiv(p.kids[1], g.kids[1], d+1)
	}
	pn, pok := normIneq(p)
	gn, gok := normIneq(g)
	if pok && gok && pn.ops[0] == gn.ops[0] && scalarSides(pn) && scalarSides(gn) {
		return c.proportional(pn, gn, pn.ops[0] != "!=").withKind("relation")
	}
	return no("relation", "the relations differ")
}

// normIneq rewrites a > b as b < a and a >= b as b <= a.
func normIneq(r *node) (*node, bool) {
	a, b := r.kids[0], r.kids[1]
	switch r.ops[0] {
	case "<", "<=", "!=":
		return r, true
	case ">":
		return &node{kind: nRel, ops: []string{"<"}, kids: []*node{b, a}}, true
	case ">=":
		return &node{kind: nRel, ops: []string{"<="}, kids: []*node{b, a}}, true
	}
	return nil, false
}

func scalarSides(r *node) bool {
	for _, k := range r.kids {
		if !isScalarNode(k) {
			return false
		}
	}
	return true
}

func isScalarNode(n *node) bool {
	switch n.kind {
	case nTuple, nSet, nList, nUnion, nRel, nMatrix, nText, nPM, nInf:
		return false
	}
	for _, k := range n.kids {
		if k != nil && !isScalarNode(k) {
			return false
		}
	}
	return true
}

// proportional decides L1-R1 = k (L2-R2) for one constant k != 0 (k > 0
// when positive), by evaluation at the deterministic points.
func (c *comparer) proportional(p, g *node, positive bool) cmp {
	f1 := &node{kind: nAdd, kids: []*node{p.kids[0], {kind: nNeg, kids: []*node{p.kids[1]}}}}
	f2 := &node{kind: nAdd, kids: []*node{g.kids[0], {kind: nNeg, kids: []*node{g.kids[1]}}}}
	vars := map[string]bool{}
	freeVars(f1, nil, vars)
	freeVars(f2, nil, vars)
	pts := numPoints
	if len(vars) == 0 {
		pts = 1
	}
	var k value
	have := false
	good := 0
	for pt := 0; pt < pts; pt++ {
		env := &evalEnv{point: pt, b: c.b}
		a, ea := env.eval(f1)
		b, eb := env.eval(f2)
		if ea != nil || eb != nil {
			continue
		}
		az, bz := a.isZero() || !a.exact && cabs(a) < 1e-12, b.isZero() || !b.exact && cabs(b) < 1e-12
		if az && bz {
			good++
			continue
		}
		if az != bz {
			return no("", "the two sides differ")
		}
		r, err := vDiv(a, b)
		if err != nil {
			continue
		}
		if !have {
			k, have = r, true
		} else if eq, _ := eqValues(k, r); !eq {
			return no("", "the two sides differ")
		}
		good++
	}
	if good == 0 || len(vars) > 0 && good < 2 {
		return no("", "the relations could not be evaluated")
	}
	if positive && have && (!k.isReal() || real(k.c) <= 0) {
		return no("", "the inequalities point in opposite directions")
	}
	return yes("")
}

func cabs(v value) float64 { return math.Hypot(real(v.c), imag(v.c)) }
