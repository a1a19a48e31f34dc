"""Reference values for tests/unit/ml/unsupervised_test.cc: run with /usr/bin/python3 (python3-sklearn)."""
import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score, davies_bouldin_score

M64 = (1 << 64) - 1


class Lcg:
    def __init__(self, seed):
        self.s = seed & M64

    def uniform(self):  # [0, 1): the top 53 bits of Knuth's MMIX LCG
        self.s = (self.s * 6364136223846793005 + 1442695040888963407) & M64
        return (self.s >> 11) * 2.0 ** -53

    def normal(self):  # Irwin-Hall: 12 uniforms - 6 (mean 0, sd 1), exact in any IEEE arithmetic
        t = 0.0
        for _ in range(12):
            t += self.uniform()
        return t - 6.0


def blobs():  # 120 rows x 3: row i in blob i % 3
    g = Lcg(42)
    centers = [(0.0, 0.0, 0.0), (10.0, 0.0, 0.0), (5.0, 8.0, 0.0)]
    X, y = [], []
    for i in range(120):
        c = centers[i % 3]
        X.append([c[0] + g.normal(), c[1] + g.normal(), c[2] + g.normal()])
        y.append(i % 3)
    return np.array(X), np.array(y)


def correlated():  # 40 rows x 5 from 3 latent factors
    g = Lcg(7)
    X = []
    for _ in range(40):
        z1, z2, z3 = g.normal(), g.normal(), g.normal()
        e1, e2, e3, e4 = g.normal(), g.normal(), g.normal(), g.normal()
        X.append([2 * z1 + 0.1 * e1, z1 - z2 + 0.1 * e2, 0.5 * z2 + z3, z3 + 0.2 * e3, 0.3 * e4])
    return np.array(X)


def sign_fixed(components):  # lathe's rule: the largest-|loading| entry (the first on ties) is positive
    c = components.copy()
    for r in range(c.shape[0]):
        if c[r, np.argmax(np.abs(c[r]))] < 0:
            c[r] = -c[r]
    return c


r = lambda v: repr(float(v))
X, y = blobs()
print("blobs: X[0]", X[0].tolist(), "X[119]", X[119].tolist())
km = KMeans(n_clusters=3, n_init=10, random_state=0).fit(X)
print("blobs kmeans k=3 inertia", r(km.inertia_))
print("blobs kmeans labels == true labels up to permutation:",
      len(set(zip(km.labels_.tolist(), y.tolist()))) == 3)
for k in (2, 4):
    print(f"blobs kmeans k={k} inertia", r(KMeans(n_clusters=k, n_init=10, random_state=0).fit(X).inertia_))
print("blobs silhouette(true labels)", r(silhouette_score(X, y)))
print("blobs davies_bouldin(true labels)", r(davies_bouldin_score(X, y)))

# 10 rows, labels {0, 1, 3, 4} (2 absent, 4 a singleton)
S = np.array([[0.0, 0.0], [1.0, 0.5], [0.5, 1.5], [4.0, 4.0], [5.0, 3.5], [4.5, 5.0], [9.0, 0.0],
              [8.0, 1.0], [9.5, 1.5], [3.0, 9.0]])
ls = np.array([0, 0, 0, 1, 1, 1, 3, 3, 3, 4])
print("small silhouette", r(silhouette_score(S, ls)))
print("small davies_bouldin", r(davies_bouldin_score(S, ls)))
lm = np.array([0, 1, 0, 1, 3, 3, 0, 1, 3, 1])  # a poor clustering: negative silhouette parts
print("small mixed silhouette", r(silhouette_score(S, lm)))
print("small mixed davies_bouldin", r(davies_bouldin_score(S, lm)))

Xp = correlated()
full = PCA(n_components=5).fit(Xp)
print("pca explained_variance_ratio", [float(v) for v in full.explained_variance_ratio_])
print("pca cumulative", np.cumsum(full.explained_variance_ratio_).tolist())
print("pca explained_variance", [float(v) for v in full.explained_variance_])
comps = sign_fixed(full.components_)
T = (Xp - full.mean_) @ comps.T
for i in (0, 1, 39):
    print(f"pca transform row {i}", T[i].tolist())
for target in (0.8, 0.95, 0.99):
    print(f"pca n_components for {target}", PCA(n_components=target, svd_solver="full").fit(Xp).n_components_)
two = PCA(n_components=2).fit(Xp)
rec = two.inverse_transform(two.transform(Xp))
for i in (0, 1, 39):
    print(f"pca p=2 reconstruction error row {i}", r(((Xp[i] - rec[i]) ** 2).sum()))
