module github.com/seed-b3892490/micro/bench/harness

go 1.26
