package search

import (
	"fmt"
	"strings"
)

type tokenKind int

const (
	tEOF tokenKind = iota
	tWord
	tString
	tEq
	tNe
	tLParen
	tRParen
	tComma
	tArrow     // ->
	tArrowText // ->>
	tContains  // @>
)

type token struct {
	kind tokenKind
	text string // word text or unquoted string value
	pos  int    // byte offset from 1
}

func (t token) isWord(w string) bool { return t.kind == tWord && strings.EqualFold(t.text, w) }

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "the end of the expression"
	case tString:
		return fmt.Sprintf("the value %q", t.text)
	case tWord:
		return fmt.Sprintf("%q", t.text)
	case tEq:
		return `"="`
	case tNe:
		return `"!="`
	case tLParen:
		return `"("`
	case tRParen:
		return `")"`
	case tComma:
		return `","`
	case tArrow:
		return `"->"`
	case tArrowText:
		return `"->>"`
	case tContains:
		return `"@>"`
	}
	return "?"
}

var keywords = []string{"and", "or", "not", "in", "like"}

func isKeyword(w string) bool {
	for _, k := range keywords {
		if strings.EqualFold(w, k) {
			return true
		}
	}
	return false
}

// isFieldByte reports whether c may appear in a field name or label key
// (labels.app.kubernetes.io/name).
func isFieldByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '.' || c == '-' || c == '/'
}

func lex(s string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(s) {
		c := s[i]
		pos := i + 1
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '=':
			toks = append(toks, token{kind: tEq, pos: pos})
			i++
		case c == '!' && i+1 < len(s) && s[i+1] == '=':
			toks = append(toks, token{kind: tNe, pos: pos})
			i += 2
		case c == '<' && i+1 < len(s) && s[i+1] == '>':
			toks = append(toks, token{kind: tNe, pos: pos})
			i += 2
		case strings.HasPrefix(s[i:], "->>"):
			toks = append(toks, token{kind: tArrowText, pos: pos})
			i += 3
		case strings.HasPrefix(s[i:], "->"):
			toks = append(toks, token{kind: tArrow, pos: pos})
			i += 2
		case strings.HasPrefix(s[i:], "@>"):
			toks = append(toks, token{kind: tContains, pos: pos})
			i += 2
		case c == '(':
			toks = append(toks, token{kind: tLParen, pos: pos})
			i++
		case c == ')':
			toks = append(toks, token{kind: tRParen, pos: pos})
			i++
		case c == ',':
			toks = append(toks, token{kind: tComma, pos: pos})
			i++
		case c == '\'':
			v, n, err := lexString(s[i:], pos)
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{kind: tString, text: v, pos: pos})
			i += n
		case isFieldByte(c):
			j := i
			for j < len(s) && isFieldByte(s[j]) && !strings.HasPrefix(s[j:], "->") {
				j++
			}
			toks = append(toks, token{kind: tWord, text: s[i:j], pos: pos})
			i = j
		case c == '"':
			return nil, &Error{Pos: pos, Msg: "values are quoted with single quotes ('abc'), not double quotes"}
		default:
			return nil, &Error{Pos: pos, Msg: fmt.Sprintf("unexpected character %q", rune(c))}
		}
	}
	return append(toks, token{kind: tEOF, pos: len(s) + 1}), nil
}

// lexString reads a single-quoted string at the start of s. A quote is
// escaped by doubling it or with a backslash; a backslash is escaped with a
// backslash. It returns the value and the bytes consumed.
func lexString(s string, pos int) (string, int, error) {
	var b strings.Builder
	i := 1
	for i < len(s) {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && (s[i+1] == '\'' || s[i+1] == '\\'):
			b.WriteByte(s[i+1])
			i += 2
		case c == '\'' && i+1 < len(s) && s[i+1] == '\'':
			b.WriteByte('\'')
			i += 2
		case c == '\'':
			return b.String(), i + 1, nil
		default:
			b.WriteByte(c)
			i++
		}
	}
	return "", 0, &Error{Pos: pos, Msg: "the quoted value starting here is not closed with '"}
}
