"""Reads a /metrics answer with the Prometheus project's own text-format parser
(prometheus_client.parser), which raises on anything that is not the exposition format.

argv: a file holding the body. Prints one JSON object: each family's type, and every sample with its labels.
"""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

families, samples = {}, []
with open(sys.argv[1], encoding="utf-8") as f:
    body = f.read()
for family in text_string_to_metric_families(body):
    families[family.name] = family.type
    for s in family.samples:
        samples.append({"name": s.name, "labels": s.labels, "value": s.value})
print(json.dumps({"families": families, "samples": samples}))
