package mathgrade

import (
	"fmt"
	"math"
	"math/big"
	"strings"
)

// scalarEquiv compares two single values.
func (c *comparer) scalarEquiv(p, g *node) cmp {
	switch {
	case p.kind == nPct && g.kind == nPct:
		return c.equiv(p.kids[0], g.kids[0], 1).withKind("percent")
	case p.kind == nPct || g.kind == nPct:
		// p% equals p (the sign omitted) and p/100.
		a, b := p, g
		if p.kind == nPct {
			a = p.kids[0]
		} else {
			b = g.kids[0]
		}
		if r := c.numeric(a, b); r.eq {
			return r.withKind("percent")
		}
		if r := c.numeric(p, g); r.eq {
			return r.withKind("percent")
		}
		return no("percent", "")
	case p.kind == nBase || g.kind == nBase:
		return c.baseEquiv(p, g)
	}
	return c.numeric(p, g)
}

func (c *comparer) baseEquiv(p, g *node) cmp {
	if p.kind == nBase && g.kind == nBase {
		return c.numeric(p, g).withKind("base")
	}
	b, other := p, g
	if g.kind == nBase {
		b, other = g, p
	}
	if other.kind == nNum && other.dec < 0 && other.s != "" {
		if strings.TrimLeft(other.s, "0") == strings.TrimLeft(b.s, "0") {
			return yes("base")
		}
		return no("base", fmt.Sprintf("%s is not %s in base %s", other.s, b.s, b.num.RatString()))
	}
	return c.numeric(p, g).withKind("base")
}

// numeric compares two scalar expressions by evaluation.
func (c *comparer) numeric(p, g *node) cmp {
	vars := map[string]bool{}
	freeVars(p, nil, vars)
	freeVars(g, nil, vars)
	pts := numPoints
	if len(vars) == 0 {
		pts = 1
	}
	good, oneSided := 0, 0
	allExact, complexVal, ints := true, false, true
	for pt := 0; pt < pts; pt++ {
		env := &evalEnv{point: pt, b: c.b}
		a, ea := env.eval(p)
		b, eb := env.eval(g)
		if ea != nil || eb != nil {
			if (ea == nil) != (eb == nil) {
				oneSided++
			}
			continue
		}
		eq, exact := eqValues(a, b)
		if !eq {
			if len(vars) == 0 {
				if r, ok := c.rounded(p, g, a, b); ok {
					return r
				}
				return no(constKind(a, b), "")
			}
			return no("expression", "the expressions differ")
		}
		good++
		allExact = allExact && exact
		if exact {
			complexVal = complexVal || a.im != nil
			ints = ints && a.re.IsInt() && a.im == nil
		}
	}
	if good == 0 {
		if oneSided > 0 {
			return no("undefined", "one of the answers is undefined")
		}
		if p.String() == g.String() {
			return yes("structure")
		}
		return no("unevaluable", "the answers could not be evaluated")
	}
	if len(vars) > 0 {
		if good < 2 {
			return no("expression", "the expressions could not be evaluated at enough points")
		}
		return yes("expression")
	}
	switch {
	case !allExact:
		return yes("numeric")
	case complexVal:
		return yes("complex")
	case ints:
		return yes("integer")
	}
	return yes("rational")
}

func constKind(a, b value) string {
	if !a.exact || !b.exact {
		return "numeric"
	}
	if a.im != nil || b.im != nil {
		return "complex"
	}
	if a.re.IsInt() && b.re.IsInt() {
		return "integer"
	}
	return "rational"
}

// decimalLiteral returns the places and significant digits of a written
// decimal such as 0.33 or -2.6667.
func decimalLiteral(n *node) (places, sig int, ok bool) {
	if n.kind == nNeg {
		return decimalLiteral(n.kids[0])
	}
	if n.kind != nNum || n.dec < 1 || n.s == "" {
		return 0, 0, false
	}
	digits := strings.TrimLeft(strings.ReplaceAll(n.s, ".", ""), "0")
	return n.dec, len(digits), true
}

func isPlainNumber(n *node) bool {
	if n.kind == nNeg {
		return isPlainNumber(n.kids[0])
	}
	return n.kind == nNum
}

// rounded accepts a decimal written with d places (and at least two
// significant digits) for an exact value that is not a plain number, when
// it is that value rounded to d places.
func (c *comparer) rounded(p, g *node, a, b value) (cmp, bool) {
	try := func(dec, other *node, dv, ov value) (cmp, bool) {
		places, sig, ok := decimalLiteral(dec)
		if !ok || sig < 2 || isPlainNumber(other) || !ov.isReal() || !dv.isReal() {
			return cmp{}, false
		}
		x, y := real(dv.c), real(ov.c)
		tol := 0.5*math.Pow10(-places) + 1e-12*math.Abs(x)
		if ov.exact && dv.exact {
			diff := new(big.Rat).Sub(ov.re, dv.re)
			diff.Abs(diff)
			half := new(big.Rat).SetFrac(big.NewInt(5), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(places+1)), nil))
			if diff.Cmp(half) <= 0 {
				return yes(fmt.Sprintf("rounded(%ddp)", places)), true
			}
			return cmp{}, false
		}
		if math.Abs(x-y) <= tol {
			return yes(fmt.Sprintf("rounded(%ddp)", places)), true
		}
		return cmp{}, false
	}
	if r, ok := try(p, g, a, b); ok {
		return r, true
	}
	return try(g, p, b, a)
}
