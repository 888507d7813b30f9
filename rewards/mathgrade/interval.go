package mathgrade

import (
	"math"
)

// comp is one component of a set of reals: an interval, or a single point
// when pt is set.
type comp struct {
	lo, hi   *node
	loC, hiC bool
	pt       *node
}

func infNode(sign int) *node {
	if sign < 0 {
		return &node{kind: nNeg, kids: []*node{{kind: nInf}}}
	}
	return &node{kind: nInf}
}

// infSign returns +1 or -1 for ±∞ (also "+\infty"), 0 otherwise.
func infSign(n *node) int {
	switch n.kind {
	case nInf:
		return 1
	case nNeg:
		return -infSign(n.kids[0])
	}
	return 0
}

// isIntervalTuple reports a two-element tuple with brackets, which may be
// an interval.
func isIntervalTuple(n *node) bool {
	return n.kind == nTuple && len(n.kids) == 2 && len(n.s) == 2 && n.s != "row"
}

// toUnion reads n as a set of reals: intervals, unions and finite sets.
func toUnion(n *node) ([]comp, bool) {
	switch n.kind {
	case nUnion:
		var out []comp
		for _, k := range n.kids {
			c, ok := toUnion(k)
			if !ok {
				return nil, false
			}
			out = append(out, c...)
		}
		return out, true
	case nTuple:
		if !isIntervalTuple(n) {
			return nil, false
		}
		return []comp{{lo: n.kids[0], hi: n.kids[1], loC: n.s[0] == '[', hiC: n.s[1] == ']'}}, true
	case nSet:
		out := make([]comp, 0, len(n.kids))
		for _, k := range n.kids {
			out = append(out, comp{pt: k})
		}
		return out, true
	}
	return nil, false
}

// relToUnion reads a relation in one subject as a set of reals: "x \in S",
// "x > 5", "5 <= x", "-2 <= x < 7", "1 <= |z| <= 2". It returns the key of
// the subject.
func relToUnion(r *node) (string, []comp, bool) {
	if r.kind != nRel {
		return "", nil, false
	}
	if len(r.ops) == 1 && r.ops[0] == "in" {
		u, ok := toUnion(r.kids[1])
		return nameKey(r.kids[0]), u, ok
	}
	for _, op := range r.ops {
		switch op {
		case "<", "<=", ">", ">=", "!=":
		default:
			return "", nil, false
		}
	}
	var subj *node
	var u []comp
	switch len(r.kids) {
	case 2:
		a, b := r.kids[0], r.kids[1]
		op := r.ops[0]
		switch {
		case !hasFreeVars(b) && hasFreeVars(a):
			subj = a
		case !hasFreeVars(a) && hasFreeVars(b):
			subj, b = b, a
			op = flipOp(op)
		default:
			return "", nil, false
		}
		if subj.kind == nNeg {
			// -x < c is x > -c.
			subj, b, op = subj.kids[0], &node{kind: nNeg, kids: []*node{b}}, flipOp(op)
		}
		switch op {
		case "<":
			u = []comp{{lo: infNode(-1), hi: b, hiC: false}}
		case "<=":
			u = []comp{{lo: infNode(-1), hi: b, hiC: true}}
		case ">":
			u = []comp{{lo: b, hi: infNode(1), loC: false}}
		case ">=":
			u = []comp{{lo: b, hi: infNode(1), loC: true}}
		case "!=":
			u = []comp{{lo: infNode(-1), hi: b}, {lo: b, hi: infNode(1)}}
		}
	case 3:
		a, x, b := r.kids[0], r.kids[1], r.kids[2]
		if hasFreeVars(a) || hasFreeVars(b) || !hasFreeVars(x) {
			return "", nil, false
		}
		o1, o2 := r.ops[0], r.ops[1]
		subj = x
		switch {
		case (o1 == "<" || o1 == "<=") && (o2 == "<" || o2 == "<="):
			u = []comp{{lo: a, hi: b, loC: o1 == "<=", hiC: o2 == "<="}}
		case (o1 == ">" || o1 == ">=") && (o2 == ">" || o2 == ">="):
			u = []comp{{lo: b, hi: a, loC: o2 == ">=", hiC: o1 == ">="}}
		default:
			return "", nil, false
		}
	default:
		return "", nil, false
	}
	// |y| in [lo, hi] is y in [-hi, -lo] ∪ [lo, hi].
	if subj.kind == nFunc && subj.s == "abs" && len(u) == 1 && infSign(u[0].hi) == 0 {
		c := u[0]
		lo := constFloat(c.lo)
		neg := func(n *node) *node { return &node{kind: nNeg, kids: []*node{n}} }
		if infSign(c.lo) != 0 || (!math.IsNaN(lo) && lo <= 0) {
			u = []comp{{lo: neg(c.hi), hi: c.hi, loC: c.hiC, hiC: c.hiC}}
		} else {
			u = []comp{{lo: neg(c.hi), hi: neg(c.lo), loC: c.hiC, hiC: c.loC}, {lo: c.lo, hi: c.hi, loC: c.loC, hiC: c.hiC}}
		}
		subj = subj.kids[0]
	}
	return nameKey(subj), u, true
}

func flipOp(op string) string {
	switch op {
	case "<":
		return ">"
	case ">":
		return "<"
	case "<=":
		return ">="
	case ">=":
		return "<="
	}
	return op
}

// constFloat evaluates a constant to a real float, NaN when it cannot.
func constFloat(n *node) float64 {
	if s := infSign(n); s != 0 {
		return math.Inf(s)
	}
	env := &evalEnv{}
	v, err := env.eval(n)
	if err != nil || !v.isReal() {
		return math.NaN()
	}
	return real(v.c)
}

// unionsEqual compares two sets of components, in any order.
func (c *comparer) unionsEqual(a, b []comp, d int) cmp {
	if len(a) > 32 || len(b) > 32 {
		return no("interval", "too many intervals to compare")
	}
	match := func(x, y comp) bool { return c.compEqual(x, y, d) }
	for _, x := range a {
		ok := false
		for _, y := range b {
			if match(x, y) {
				ok = true
				break
			}
		}
		if !ok {
			return no("interval", "")
		}
	}
	for _, y := range b {
		ok := false
		for _, x := range a {
			if match(x, y) {
				ok = true
				break
			}
		}
		if !ok {
			return no("interval", "")
		}
	}
	return yes("interval")
}

func (c *comparer) compEqual(x, y comp, d int) bool {
	if (x.pt == nil) != (y.pt == nil) {
		return false
	}
	if x.pt != nil {
		return c.equiv(x.pt, y.pt, d+1).eq
	}
	if !c.endpointEq(x.lo, y.lo, d) || !c.endpointEq(x.hi, y.hi, d) {
		return false
	}
	// Closedness matters only at finite endpoints.
	if infSign(x.lo) == 0 && x.loC != y.loC {
		return false
	}
	if infSign(x.hi) == 0 && x.hiC != y.hiC {
		return false
	}
	return true
}

func (c *comparer) endpointEq(a, b *node, d int) bool {
	sa, sb := infSign(a), infSign(b)
	if sa != 0 || sb != 0 {
		return sa == sb
	}
	return c.equiv(a, b, d+1).eq
}
