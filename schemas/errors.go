package schemas

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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

// jsonError turns encoding/json's errors into FieldErrors that name the field
// and the expected type in words an upstream team can act on.
func jsonError(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		field := typeErr.Field
		if field == "" {
			return &FieldError{Reason: fmt.Sprintf("message must be a JSON object, got %s", typeErr.Value)}
		}
		return fieldErr(field, "expected %s, got %s", typeName(typeErr.Type.String()), typeErr.Value)
	}
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		return &FieldError{Reason: fmt.Sprintf("not valid JSON at byte %d: %v", syntaxErr.Offset, syntaxErr)}
	}
	return &FieldError{Reason: "not valid JSON: " + err.Error()}
}

func typeName(goType string) string {
	goType = strings.TrimPrefix(goType, "*")
	switch {
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "an integer"
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "a boolean"
	case strings.Contains(goType, "Profile"):
		return "an object"
	default:
		return goType
	}
}
