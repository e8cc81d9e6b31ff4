// Package archtest holds the tests of kdcal's layout: which packages may
// depend on which (imports_test.go). It has no code of its own.
package archtest
