package validate

import (
	"fmt"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
)

// Column describes one column in redraft's schema language, shared with the
// JSON descriptions in schemas/ and the Python consumer's check: types are
// string, bool, int32, int64, double, list<T> and struct<name: T, ...>, and a
// nested field that may be null is written "name?: T".
type Column struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Nullable    bool   `json:"nullable"`
	Description string `json:"description,omitempty"`
}

// DescribeType writes an Arrow type in the schema language.
func DescribeType(t arrow.DataType) string {
	switch t := t.(type) {
	case *arrow.StringType, *arrow.LargeStringType:
		return "string"
	case *arrow.BooleanType:
		return "bool"
	case *arrow.Int32Type:
		return "int32"
	case *arrow.Int64Type:
		return "int64"
	case *arrow.Float64Type:
		return "double"
	case *arrow.ListType:
		return "list<" + DescribeType(t.Elem()) + ">"
	case *arrow.StructType:
		parts := make([]string, len(t.Fields()))
		for i, f := range t.Fields() {
			q := ""
			if f.Nullable {
				q = "?"
			}
			parts[i] = f.Name + q + ": " + DescribeType(f.Type)
		}
		return "struct<" + strings.Join(parts, ", ") + ">"
	default:
		return t.String()
	}
}

// DescribeFile returns the columns of a Parquet file as Arrow reads them.
func DescribeFile(path string) ([]Column, error) {
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer pf.Close()
	sc, err := pqarrow.FromParquet(pf.MetaData().Schema, nil, pf.MetaData().KeyValueMetadata())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	cols := make([]Column, len(sc.Fields()))
	for i, f := range sc.Fields() {
		cols[i] = Column{Name: f.Name, Type: DescribeType(f.Type), Nullable: f.Nullable}
	}
	return cols, nil
}
