from django.urls import reverse

# (url name, label) for the main navigation; every area of the console is one entry.
NAV = [
    ("home", "Overview"),
    ("monitoring:gpu", "GPU"),
    ("monitoring:logs", "Logs"),
    ("monitoring:audit", "Audit"),
    ("alerting:alerts", "Alerts"),
    ("alerting:rules", "Rules"),
    ("alerting:zones", "Zones"),
    ("alerting:baselines", "Baselines"),
    ("dashboard:events", "Events"),
    ("jobs:list", "Jobs"),
    ("jobs:exports", "Exports"),
    ("jobs:backups", "Backups"),
]


def nav(request):
    path = request.path
    items = []
    for name, label in NAV:
        url = reverse(name)
        active = path == url if url == "/" else path.startswith(url)
        items.append({"url": url, "label": label, "active": active})
    from dashboard.permissions import is_operator

    return {"nav_items": items, "is_operator": is_operator(request.user)}
