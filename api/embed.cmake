# Writes OUT, a C file holding the bytes of IN as sh_openapi[] and sh_openapi_len: the OpenAPI
# document the API serves is the one in docs/, byte for byte.
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR bytes "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "((0x..,){16})" "\\1\n" body "${body}")
file(WRITE ${OUT} "/* generated from docs/openapi.json by api/embed.cmake */\n"
                  "#include \"openapi.h\"\n"
                  "const unsigned char sh_openapi[] = {\n${body}\n};\n"
                  "const size_t sh_openapi_len = ${bytes};\n")
