package fsm

//go:generate go run ../tools/gendot -out ../docs/statecharts
