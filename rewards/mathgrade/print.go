package mathgrade

import (
	"strings"
)

// String renders n in a compact canonical form; it is what Result.Pred and
// Result.Gold show and what structural comparison falls back to.
func (n *node) String() string {
	var sb strings.Builder
	n.write(&sb, 0)
	return sb.String()
}

const maxPrintDepth = 64

func (n *node) write(sb *strings.Builder, depth int) {
	if n == nil {
		return
	}
	if depth > maxPrintDepth || sb.Len() > 4096 {
		sb.WriteString("…")
		return
	}
	d := depth + 1
	join := func(sep string) {
		for i, k := range n.kids {
			if i > 0 {
				sb.WriteString(sep)
			}
			k.write(sb, d)
		}
	}
	switch n.kind {
	case nNum:
		if n.num.IsInt() {
			sb.WriteString(n.num.Num().String())
		} else if n.dec > 0 {
			sb.WriteString(n.num.FloatString(n.dec))
		} else {
			sb.WriteString(n.num.RatString())
		}
	case nSym:
		sb.WriteString(n.s)
	case nInf:
		sb.WriteString("∞")
	case nAdd:
		sb.WriteByte('(')
		for i, k := range n.kids {
			if i > 0 {
				if k.kind == nNeg {
					sb.WriteString(" - ")
					k.kids[0].write(sb, d)
					continue
				}
				sb.WriteString(" + ")
			}
			k.write(sb, d)
		}
		sb.WriteByte(')')
	case nMul:
		join("*")
	case nNeg:
		sb.WriteString("-")
		n.kids[0].write(sb, d)
	case nDiv:
		sb.WriteByte('(')
		n.kids[0].write(sb, d)
		sb.WriteString(")/(")
		n.kids[1].write(sb, d)
		sb.WriteByte(')')
	case nPow:
		sb.WriteByte('(')
		n.kids[0].write(sb, d)
		sb.WriteString(")^(")
		n.kids[1].write(sb, d)
		sb.WriteByte(')')
	case nFunc:
		sb.WriteString(n.s)
		sb.WriteByte('(')
		join(", ")
		sb.WriteByte(')')
	case nPct:
		n.kids[0].write(sb, d)
		sb.WriteByte('%')
	case nPM:
		if n.kids[0] != nil {
			n.kids[0].write(sb, d)
		}
		if n.s == "mp" {
			sb.WriteString(" ∓ ")
		} else {
			sb.WriteString(" ± ")
		}
		n.kids[1].write(sb, d)
	case nTuple:
		switch n.s {
		case ":":
			join(":")
		case "row":
			join(" & ")
		default:
			open, cl := "(", ")"
			if len(n.s) == 2 {
				open, cl = n.s[:1], n.s[1:]
			}
			sb.WriteString(open)
			join(", ")
			sb.WriteString(cl)
		}
	case nSet:
		sb.WriteString("{")
		join(", ")
		sb.WriteString("}")
	case nList:
		switch n.s {
		case "or", "and":
			join(" " + n.s + " ")
		case ";":
			join("; ")
		default:
			join(", ")
		}
	case nUnion:
		join(" ∪ ")
	case nRel:
		for i, k := range n.kids {
			if i > 0 {
				sb.WriteString(" " + n.ops[i-1] + " ")
			}
			k.write(sb, d)
		}
	case nMatrix:
		sb.WriteString("[")
		join("; ")
		sb.WriteString("]")
	case nText:
		sb.WriteString(n.s)
	case nSum:
		sb.WriteString(n.s + "_{" + n.ops[0] + "=")
		n.kids[0].write(sb, d)
		sb.WriteString("}^{")
		n.kids[1].write(sb, d)
		sb.WriteString("} ")
		n.kids[2].write(sb, d)
	case nBase:
		sb.WriteString(n.s + "_" + n.num.RatString())
	}
}
