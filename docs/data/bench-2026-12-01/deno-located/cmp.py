import json,glob,statistics as st,sys
d_=sys.argv[1]; T=sys.argv[2]
D={}
for f in sorted(glob.glob(d_+'/*.json')):
    v=f.split('/')[-1].split('-')[0]
    d=json.load(open(f))['models'][0]
    for r in d['rows']:
        D.setdefault(r['op'],{}).setdefault(v,[]).append(r['ms'][T])
    D.setdefault('STEP',{}).setdefault(v,[]).append(d['stepMs'][T])
rows=[(op,x.get('node',[0]),x.get('deno',[0])) for op,x in D.items()]
rows.sort(key=lambda r:-(st.median(r[2])-st.median(r[1])))
for op,n,d in rows:
    if max(st.median(n),st.median(d))<0.5: continue
    print(f"{op:45s} node {' '.join('%6.1f'%x for x in n)} | deno {' '.join('%6.1f'%x for x in d)} | ratio {st.median(d)/st.median(n):5.2f}")
