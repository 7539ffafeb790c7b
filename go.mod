module github.com/vrid/vrid

go 1.24
