# Independent computation (Python stdlib) of the expected values in internal/experiment tests.
import math
from statistics import NormalDist
z = NormalDist().inv_cdf(0.975)
def wilson(x, n):
    p = x/n
    c = (2*n*p + z*z)
    d = z*math.sqrt(z*z + 4*n*p*(1-p))
    return ((c-d)/(2*(n+z*z)), (c+d)/(2*(n+z*z)))
for x,n in [(81,263),(15,148),(0,20),(1,29),(29,29)]:
    print("wilson", x, n, ["%.6f"%v for v in wilson(x,n)])
def newcombe(a,m,b,n):
    p1,p2=a/m,b/n
    l1,u1=wilson(a,m); l2,u2=wilson(b,n)
    d=p1-p2
    return (d-math.sqrt((p1-l1)**2+(u2-p2)**2), d+math.sqrt((u1-p1)**2+(p2-l2)**2))
for t in [(56,70,48,80),(9,10,3,10),(6,7,2,7),(5,56,0,29),(0,10,0,20),(0,10,0,10)]:
    print("newcombe", t, ["%.6f"%v for v in newcombe(*t)])
def ztest(a,m,b,n):
    p=(a+b)/(m+n); se=math.sqrt(p*(1-p)*(1/m+1/n)); zs=(a/m-b/n)/se
    return math.erfc(abs(zs)/math.sqrt(2))
def katz(a,m,b,n):
    if a==0 or b==0 or a==m or b==n: a,b,m,n=a+.5,b+.5,m+1,n+1
    lr=math.log((a/m)/(b/n)); se=math.sqrt(1/a-1/m+1/b-1/n)
    return (math.exp(lr-z*se)-1, math.exp(lr+z*se)-1)
for t in [(56,70,48,80),(330,3000,300,3000),(5,56,0,29)]:
    print("z", t, "%.8g"%ztest(*t), "katz", ["%.6f"%v for v in katz(*t)])
# SRM, Kohavi et al. 2020 ch 21: 821,588 vs 815,482 at 50/50
o=[821588,815482]; T=sum(o); chi=sum((x-T/2)**2/(T/2) for x in o)
print("srm", chi, math.erfc(math.sqrt(chi/2)))
o=[1000,1100,900]; T=sum(o); chi=sum((x-T/3)**2/(T/3) for x in o)
print("srm3", chi, math.exp(-chi/2))
def msprt(looks,tau):
    p=1.0
    for (a,m,b,n) in looks:  # variant a/m, control b/n
        pv,pc=a/m,b/n; v=pc*(1-pc)/n+pv*(1-pv)/m; t2=tau*tau; d=pv-pc
        lam=math.sqrt(v/(v+t2))*math.exp(t2*d*d/(2*v*(v+t2)))
        p=min(p,1/lam)
    return p
print("msprt", "%.8g"%msprt([(110,1000,100,1000),(230,2000,200,2000),(360,3000,300,3000)],0.02))
print("msprt2", "%.8g"%msprt([(130,1000,100,1000),(280,2000,200,2000),(450,3000,300,3000)],0.02))
