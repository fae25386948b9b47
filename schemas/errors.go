package schemas

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// FieldError says which field of a message was wrong and why. Field is empty
// when the message as a whole is unusable (not JSON, not an object).
type FieldError struct {
	Field  string
	Reason string
}

// Error implements error.
func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return fmt.Sprintf("field %q: %s", e.Field, e.Reason)
}

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

func missing(field string) error { return fieldErr(field, "required field is missing") }

// quote shows a short, quoted excerpt of a bad value inside an error.
func quote(s string) string {
	const max = 40
	if len(s) > max {
		s = s[:max] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// jsonError turns the JSON layer's errors into FieldErrors that name the
// field and say what was expected, in words an upstream team can act on. The
// JSON layer's own messages are not used as they are: their wording is not
// stable across versions.
func jsonError(err error) error {
	var synErr *jsontext.SyntacticError
	if errors.As(err, &synErr) {
		field := fieldPath(synErr.JSONPointer)
		switch {
		case errors.Is(synErr.Err, jsontext.ErrDuplicateName):
			return &FieldError{Field: field, Reason: fmt.Sprintf("duplicate key %q (a key may appear only once in an object)", field)}
		case errors.Is(synErr.Err, io.ErrUnexpectedEOF):
			return &FieldError{Reason: fmt.Sprintf("not valid JSON: the message ends at byte %d before the object is complete (truncated?)", synErr.ByteOffset)}
		case synErr.Err != nil && strings.Contains(synErr.Err.Error(), "after top-level value"):
			return &FieldError{Reason: fmt.Sprintf("not valid JSON: unexpected data after the object at byte %d", synErr.ByteOffset)}
		}
		reason := fmt.Sprintf("not valid JSON at byte %d", synErr.ByteOffset)
		if synErr.Err != nil {
			reason += ": " + synErr.Err.Error()
		}
		return &FieldError{Field: field, Reason: reason}
	}
	var semErr *json.SemanticError
	if errors.As(err, &semErr) {
		field := fieldPath(semErr.JSONPointer)
		if field == "" {
			return &FieldError{Reason: "message must be a JSON object, got " + kindName(semErr.JSONKind)}
		}
		want := "a value of another type"
		if semErr.GoType != nil {
			want = typeName(semErr.GoType)
		}
		if semErr.JSONKind == '0' && len(semErr.JSONValue) > 0 {
			if semErr.Err != nil && strings.Contains(semErr.Err.Error(), "out of range") {
				return fieldErr(field, "number %s is out of range for %s", quote(string(semErr.JSONValue)), want)
			}
			return fieldErr(field, "expected %s, got the number %s", want, quote(string(semErr.JSONValue)))
		}
		return fieldErr(field, "expected %s, got %s", want, kindName(semErr.JSONKind))
	}
	return &FieldError{Reason: "not valid JSON: " + err.Error()}
}

// fieldPath turns a JSON pointer (/profile/tier) into the dotted field name
// the other errors use (profile.tier). A name longer than maxFieldName
// characters (no field of the SPEC comes close) is cut, with "...", so that
// an error stays short enough for a Kafka header and a log line.
func fieldPath(p jsontext.Pointer) string {
	var sb strings.Builder
	for tok := range p.Tokens() {
		if sb.Len() > 0 {
			sb.WriteByte('.')
		}
		if r := []rune(tok); len(r) > maxFieldName {
			tok = string(r[:maxFieldName]) + "..."
		}
		sb.WriteString(tok)
	}
	return sb.String()
}

// maxFieldName bounds each name in an error's field path.
const maxFieldName = 64

func kindName(k jsontext.Kind) string {
	switch k {
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	case '"':
		return "a string"
	case '0':
		return "a number"
	case '{', '}':
		return "an object"
	case '[', ']':
		return "an array"
	default:
		return "something else"
	}
}

func typeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Struct, reflect.Map:
		return "an object"
	default:
		return t.String()
	}
}
