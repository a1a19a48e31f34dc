#!/usr/bin/env python3
"""Writes the JSON importer fixtures next to this script (byte-exact; run once, the files are committed)."""
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def put(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))


put("types.jsonl",
    '{"i":1,"f":1.5,"b":true,"s":"x","d":"2024-01-02","dt":"2024-01-02T03:04:05Z","mix":1,"if":1,"n":null}\n'
    '{"i":-2,"f":2,"b":false,"s":"y","d":"2024-02-29","dt":"2024-01-02 03:04:05.5+01:00","mix":"a","if":2.5,"n":null}\n'
    '{"i":3,"b":null,"s":"","d":"2024-03-01","mix":true,"s2":"NA"}\n')
put("nested.jsonl",
    '{"id":1,"user":{"name":"a","geo":{"lat":1.5,"lon":2}},"tags":["x", "y"]}\n'
    '{"id":2,"user":{"name":"b"},"extra":{"deep":{"k":[1, {"z":null}]}},"tags":[]}\n'
    '{"id":3,"tags":"plain","user":{}}\n')
put("array_bom_crlf.json",
    b'\xef\xbb\xbf[\r\n  {"a": 1, "s": "x,]}\\"{["},\r\n\t{"a": 2, "s": "line\\nbreak"} ,\r\n'
    b'  {"s": "only s"}\r\n]\r\n')
put("crlf_bom.jsonl", b'\xef\xbb\xbf{"a":1,"b":"x"}\r\n\r\n   \r\n{"a":2,"b":"y"}\r\n{"a":3}')
put("unicode.jsonl",
    '{"s":"na\u00efve \\u00e9t\\u00e9","e":"\\ud83d\\ude00","z":"a\\u0000b","esc":"q\\"b\\\\s\\/n\\nt\\t"}\n'
    '{"s":"\u65e5\u672c\u8a9e","e":"\U0001F600","z":"","esc":"plain"}\n')
put("huge_numbers.jsonl",
    '{"big":123456789012345678901234567890,"u":18446744073709551615,"i":9223372036854775807,'
    '"neg":-9223372036854775808,"e":1.5e300}\n'
    '{"big":1,"u":1,"i":0,"neg":0,"e":-0.0}\n')
put("deep.jsonl",
    '{"a":1}\n' + '{"a":' + '[' * 70 + ']' * 70 + '}\n' + '{"a":{"b":{"c":{"d":1}}}}\n')
put("malformed.jsonl",
    '{"a":1,"b":"x"}\n'
    '{"a":2,"b":\n'
    '[1,2]\n'
    '\n'
    '{"a":3,"a":4}\n'
    '{"a":"oops","b":"z"}\n'
    '{"a":5} xyz\n'
    '{"a":6,"b":"v"}\n')
put("array_bad_element.json", '[{"a":1},\n {"a":},\n 7,\n {"a":4}]\n')
put("truncated_array.json", '[{"a":1},{"a":2')
put("trailing_garbage_array.json", '[{"a":1}] x\n')
put("trailing_comma_array.json", '[{"a":1},]\n')
put("empty.jsonl", b"")
put("blank.jsonl", "\n\n  \r\n")
put("empty_array.json", " [ \n ] \n")
put("scalars_array.json", "[1, 2, 3]")
put("date_formats.jsonl", '{"d":"03/01/2024","n":"12","z":"00123"}\n{"d":"31/12/1999","n":" 7","z":"9"}\n'
    '{"d":"2024-01-03","n":"8","z":"1"}\n')
put("missing_tokens.jsonl", '{"s":"-","t":"NA","u":1}\n{"s":"x","t":"y","u":"-"}\n')
put("dotted_collision.jsonl", '{"a.b":1,"a":{"b":2}}\n{"a.b":3}\n')
put("invalid_utf8.jsonl", b'{"s":"ok"}\n{"s":"\xff\xfe"}\n{"s":"fine"}\n')
put("long_line.jsonl", '{"a":1}\n{"a":"' + "x" * 200 + '"}\n{"a":3}\n')
put("empty_key.jsonl", '{"a":1}\n{"":2}\n')
put("not_json.jsonl", "this is not json\nneither is this\n")
put("null_only.jsonl", '{"a":null,"b":1}\n{"b":2}\n')
put("bool_mix.jsonl", '{"x":true}\n{"x":"yes"}\n{"x":1.0}\n')
put("long_element.json", '[{"a":1},{"a":"' + "x" * 200 + '"},{"a":3}]')
