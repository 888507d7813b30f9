package mathgrade

import (
	"fmt"
)

// expandPM turns an expression with ± into the list of its two values
// (all ± signs together, ∓ opposite).
func expandPM(n *node) *node {
	if !hasPM(n, 0) {
		return n
	}
	plus := substPM(n, 1)
	minus := substPM(n, -1)
	return &node{kind: nList, s: "pm", kids: []*node{plus, minus}}
}

func hasPM(n *node, d int) bool {
	if n == nil || d > maxParseDepth {
		return false
	}
	if n.kind == nPM {
		return true
	}
	if n.kind == nList || n.kind == nSet || n.kind == nTuple || n.kind == nMatrix || n.kind == nRel || n.kind == nUnion {
		return false
	}
	for _, k := range n.kids {
		if hasPM(k, d+1) {
			return true
		}
	}
	return false
}

func substPM(n *node, sign int) *node {
	if n == nil {
		return nil
	}
	if n.kind == nPM {
		s := sign
		if n.s == "mp" {
			s = -s
		}
		b := substPM(n.kids[1], sign)
		if s < 0 {
			b = &node{kind: nNeg, kids: []*node{b}}
		}
		if n.kids[0] == nil {
			return b
		}
		return &node{kind: nAdd, kids: []*node{substPM(n.kids[0], sign), b}}
	}
	if len(n.kids) == 0 {
		return n
	}
	cp := *n
	cp.kids = make([]*node, len(n.kids))
	for i, k := range n.kids {
		cp.kids[i] = substPM(k, sign)
	}
	return &cp
}

// elems returns the members of a list or set, with ± expanded.
func elems(n *node) []*node {
	var out []*node
	for _, k := range n.kids {
		k = reduceRel(k)
		if k.kind != nList && k.kind != nSet {
			k = expandPM(k)
		}
		if k.kind == nList && k.s == "pm" {
			out = append(out, k.kids...)
			continue
		}
		out = append(out, k)
	}
	return out
}

func (c *comparer) collEquiv(p, g *node, d int) cmp {
	pc, gc := isCollection(p), isCollection(g)
	if pc && p.kind == nList && p.s == "or" && !gc {
		return no("ambiguous", "the response offers alternatives where one answer is expected")
	}
	if pc && gc {
		if p.kind == nSet && g.kind == nSet || p.kind == nList || g.kind == nList {
			return c.setEqual(elems(p), elems(g), d)
		}
	}
	if pc && g.kind == nTuple || gc && p.kind == nTuple {
		if p.kind == nSet || g.kind == nSet {
			return no("set", "a set is not an ordered tuple")
		}
		// A bare list against a tuple is the tuple without brackets.
		pe, ge := p.kids, g.kids
		if pc {
			pe = elems(p)
		} else {
			ge = elems(g)
		}
		return c.ordered(pe, ge, d).withKind("tuple")
	}
	coll, other := p, g
	if !pc {
		coll, other = g, p
	}
	es := elems(coll)
	if len(es) == 1 {
		if pc {
			return c.equiv(es[0], other, d+1)
		}
		return c.equiv(other, es[0], d+1)
	}
	if coll.alt != nil {
		var r cmp
		if pc {
			r = c.equiv(coll.alt, other, d+1)
		} else {
			r = c.equiv(other, coll.alt, d+1)
		}
		if r.eq {
			return yes("decimal_comma")
		}
	}
	if pc {
		return no("set_size", fmt.Sprintf("the answer has %d items and the reference one", len(es)))
	}
	return no("set_size", fmt.Sprintf("the reference has %d items and the answer one", len(es)))
}

const maxSetElems = 64

// setEqual compares two collections as sets: every member of each has an
// equal member in the other.
func (c *comparer) setEqual(a, b []*node, d int) cmp {
	if len(a) > maxSetElems || len(b) > maxSetElems {
		return no("set", "too many elements to compare")
	}
	eq := make([][]int8, len(a)) // 0 unknown, 1 equal, -1 not
	for i := range eq {
		eq[i] = make([]int8, len(b))
	}
	test := func(i, j int) bool {
		if eq[i][j] == 0 {
			eq[i][j] = -1
			if c.equiv(a[i], b[j], d+1).eq {
				eq[i][j] = 1
			}
		}
		return eq[i][j] == 1
	}
	for i := range a {
		ok := false
		for j := range b {
			if test(i, j) {
				ok = true
				break
			}
		}
		if !ok {
			return no("set", fmt.Sprintf("%s is not in the reference", clip(a[i].String(), 60)))
		}
	}
	for j := range b {
		ok := false
		for i := range a {
			if test(i, j) {
				ok = true
				break
			}
		}
		if !ok {
			return no("set", fmt.Sprintf("the answer misses %s", clip(b[j].String(), 60)))
		}
	}
	return yes("set")
}

func (c *comparer) ordered(a, b []*node, d int) cmp {
	if len(a) != len(b) {
		return no("", fmt.Sprintf("the answer has %d components and the reference %d", len(a), len(b)))
	}
	for i := range a {
		if r := c.equiv(a[i], b[i], d+1); !r.eq {
			return no("", fmt.Sprintf("component %d differs", i+1))
		}
	}
	return yes("")
}
