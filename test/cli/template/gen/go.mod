module imgbuild/test/cli/template/gen

go 1.19
