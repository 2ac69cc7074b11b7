import json, copy, random, sys
from intents.kb import KnowledgeBase
from intents.matcher import Matcher, MatcherConfig, OUT_OF_SCOPE
kb = KnowledgeBase()
dev = [json.loads(l) for l in open('../shared/eval/dev.jsonl')]
items = [(e.id, x) for e in kb.entries.values() for x in e.examples] + [(OUT_OF_SCOPE, x) for x in kb.out_of_scope_examples]
random.seed(7); random.shuffle(items)
K = 5
folds = [items[i::K] for i in range(K)]
def kb_without(held):
    held_set = set(map(tuple, held))
    k = copy.copy(kb); k.entries = {}
    for e in kb.entries.values():
        e2 = copy.copy(e); e2.examples = [x for x in e.examples if (e.id, x) not in held_set]; k.entries[e.id] = e2
    k.out_of_scope_examples = [x for x in kb.out_of_scope_examples if (OUT_OF_SCOPE, x) not in held_set]
    return k
kbs = [kb_without(f) for f in folds]
def decide(m, cfg, text):
    a = m.analyse(text); p = a.best.intent
    if m.calibrate(a.out_of_scope_score) >= a.best.confidence or a.best.confidence < cfg.floor: p = OUT_OF_SCOPE
    return p
from collections import Counter
def run(cfg):
    ok = n = 0
    kinds = Counter()
    for f, k in zip(folds, kbs):
        m = Matcher(k, cfg)
        for l, x in f:
            p = decide(m, cfg, x)
            ok += p == l; n += 1
            if p != l: kinds['rej' if p == OUT_OF_SCOPE else ('acc' if l == OUT_OF_SCOPE else 'conf')] += 1
    print(dict(kinds), end=' ')
    m = Matcher(kb, cfg)
    dok = sum(decide(m, cfg, d['text']) == d['intent'] for d in dev)
    return round(ok/n, 4), round(dok/len(dev), 4)
grid = eval(sys.argv[1])
for g in grid:
    bw, wb, wt, wc, wf = g[:5]
    extra = g[5] if len(g) > 5 else {}
    cfg = MatcherConfig(bigram_weight=bw, weight_best=wb, weight_top=wt, weight_centroid=wc, weight_fuzzy=wf, **extra)
    print(g, run(cfg), flush=True)
if len(sys.argv) > 2:
    from collections import Counter
    cfg = MatcherConfig(bigram_weight=.5, weight_best=.1, weight_top=.2, weight_centroid=.5, weight_fuzzy=.2, weight_bayes=.3)
    c = Counter(); ex = []
    for f, k in zip(folds, kbs):
        m = Matcher(k, cfg)
        for l, x in f:
            p = decide(m, cfg, x)
            if p != l:
                kind = 'rejected' if p == OUT_OF_SCOPE else ('accepted_oos' if l == OUT_OF_SCOPE else 'confused')
                c[kind] += 1; ex.append((kind, l, p, x))
    print(c)
    pairs = Counter((e[1], e[2]) for e in ex if e[0]=='confused')
    for pr, n in pairs.most_common(25): print(n, pr)
