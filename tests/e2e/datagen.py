"""Small deterministic CSV generators for end-to-end tests."""
import random


def churn_csv(rows=400, seed=7):
    """A binary-classification CSV: ints, floats with missing values, a category, a date and a 0/1 label
    that depends on the features (so a model can learn it)."""
    rnd = random.Random(seed)
    lines = ["age,income,plan,signup,visits,churned"]
    for i in range(rows):
        age = rnd.randint(18, 80)
        income = "" if rnd.random() < 0.05 else f"{rnd.gauss(50000, 15000):.2f}"
        plan = rnd.choice(["basic", "pro", "team"])
        signup = f"2024-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"
        visits = rnd.randint(0, 30)
        score = (visits < 8) * 1.5 + (plan == "basic") * 1.0 + (age > 60) * 0.7 + rnd.gauss(0, 0.6)
        lines.append(f"{age},{income},{plan},{signup},{visits},{1 if score > 1.4 else 0}")
    return "\n".join(lines) + "\n"


def iris_like_csv(rows=300, seed=3):
    """A three-class CSV with a string label."""
    rnd = random.Random(seed)
    lines = ["sepal_length,sepal_width,petal_length,species"]
    centers = {"setosa": (5.0, 3.4, 1.5), "versicolor": (5.9, 2.8, 4.3), "virginica": (6.6, 3.0, 5.6)}
    names = list(centers)
    for i in range(rows):
        s = names[i % 3]
        c = centers[s]
        lines.append(f"{rnd.gauss(c[0], 0.3):.2f},{rnd.gauss(c[1], 0.3):.2f},{rnd.gauss(c[2], 0.3):.2f},{s}")
    return "\n".join(lines) + "\n"


def regression_csv(rows=300, seed=5):
    rnd = random.Random(seed)
    lines = ["x1,x2,city,price"]
    for _ in range(rows):
        x1, x2 = rnd.uniform(0, 10), rnd.uniform(-5, 5)
        city = rnd.choice(["a", "b", "c"])
        price = 3 * x1 - 2 * x2 + {"a": 0, "b": 5, "c": 10}[city] + rnd.gauss(0, 0.5)
        lines.append(f"{x1:.3f},{x2:.3f},{city},{price:.3f}")
    return "\n".join(lines) + "\n"


def customer_events_csv(rows=600, seed=11, customers=40):
    """Binary classification with repeated customers (a group column) and one date per three rows in order
    (a time column): customer, day, amount, channel, bought. Each customer has its own effect, so rows of one
    customer are alike, which is why group k-fold exists."""
    import datetime
    rnd = random.Random(seed)
    effect = [rnd.gauss(0, 1.0) for _ in range(customers)]
    start = datetime.date(2024, 1, 1)
    lines = ["customer,day,amount,channel,bought"]
    for i in range(rows):
        c = rnd.randrange(customers)
        day = start + datetime.timedelta(days=i // 3)
        amount = rnd.uniform(0, 100)
        channel = rnd.choice(["web", "store", "phone"])
        score = (amount - 50) / 20 + (channel == "web") * 0.8 + effect[c] + rnd.gauss(0, 0.7)
        lines.append(f"c{c:02d},{day.isoformat()},{amount:.2f},{channel},{1 if score > 0.3 else 0}")
    return "\n".join(lines) + "\n"
