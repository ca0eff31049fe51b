# Loaded before Django settings: tests run with DJANGO_ENV=test and their own var/ folder, so
# they never touch a running dev server's database, media or embedded Redis.
import os

os.environ.setdefault("DJANGO_ENV", "test")
os.environ.setdefault("VAR_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "var", "test"))
