// Package sql92 compiles and evaluates the SQL92 property filters of
// RocketMQ consumers (expressionType SQL92), for example
//
//	region = 'hz' AND (amount > 100 OR vip IS NOT NULL) AND level IN (1, 2)
//
// The grammar, case-insensitive for keywords:
//
//	expr       := or
//	or         := and { OR and }
//	and        := not { AND not }
//	not        := NOT not | predicate
//	predicate  := '(' expr ')' | TRUE | FALSE
//	            | operand cmp operand
//	            | operand [NOT] BETWEEN operand AND operand
//	            | operand [NOT] IN '(' literal { ',' literal } ')'
//	            | operand IS [NOT] NULL
//	            | operand [NOT] (CONTAINS | STARTSWITH | ENDSWITH) string
//	cmp        := '=' | '<>' | '!=' | '<' | '<=' | '>' | '>='
//	operand    := identifier | literal
//	literal    := string | number | TRUE | FALSE
//
// Strings are single-quoted, a doubled quote standing for one; numbers are
// decimal integers or floats with an optional sign; identifiers are
// letters, digits, '_', '$' and '.', not starting with a digit.
//
// Evaluation follows SQL's three-valued logic: a comparison with a missing
// property, or between a number and a property that is not one, is
// unknown; NOT unknown is unknown; unknown AND false is false; unknown OR
// true is true. A message matches only when the whole expression is true.
// Property values are strings; a comparison with a number literal parses
// the property as a number, one with TRUE or FALSE as a boolean.
package sql92
