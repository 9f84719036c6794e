# Scrapes URL every INTERVAL seconds over one kept-alive connection, as a Prometheus server does, until
# killed: python3 bench/cost/scrape.py URL INTERVAL. A curl per scrape would cost the machine a
# process start (about 20 ms of CPU here) and measure curl rather than segfs.
import http.client, sys, time, urllib.parse

url = urllib.parse.urlsplit(sys.argv[1])
every = float(sys.argv[2])
conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
next_at = time.monotonic()
while True:
    conn.request("GET", url.path, headers={"Accept": "text/plain"})
    resp = conn.getresponse()
    resp.read()
    if resp.status != 200:
        sys.exit(f"scrape {sys.argv[1]}: HTTP {resp.status}")
    next_at += every
    time.sleep(max(0.0, next_at - time.monotonic()))
