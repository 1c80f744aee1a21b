# The Redis image pin, read by docker-compose.yml and by container tests (one line to bump).
FROM redis:7.4.2-alpine
