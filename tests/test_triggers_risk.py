"""The risk trigger: every default pattern, what it must match and what it must not."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lifecycle.errors import InvalidSettings
from lifecycle.keys import format_ts, is_valid, parse_checkpoint_key
from lifecycle.records import CheckpointType
from lifecycle.spec import Event
from lifecycle.triggers import Activity, Operation, SessionFacts
from lifecycle.triggers.risk import (
    DEFAULT_COMMAND_PATTERNS,
    DEFAULT_PATH_PATTERNS,
    DEFAULT_SETTINGS,
    CommandPattern,
    PathPattern,
    RiskCategory,
    RiskMatch,
    RiskSettings,
    RiskTrigger,
    classify,
    executed_text,
    glob_regex,
)

NOW = datetime(2025, 1, 31, 14, 30, tzinfo=UTC)
FACTS = SessionFacts()


def slugs(operation: Operation) -> list[str]:
    return [m.slug for m in classify(operation)]


def before(operation: Operation) -> Activity:
    return Activity(Event.BEFORE_OPERATION, NOW, operation=operation)


# -- command patterns -------------------------------------------------------------------

COMMAND_MATCHES: list[tuple[str, str]] = [
    ("rm -rf build", "rm-rf"),
    ("rm -fr build", "rm-rf"),
    ("rm -r dir", "rm-rf"),
    ("rm -R dir", "rm-rf"),
    ("rm -f -r dir", "rm-rf"),
    ("rm dir -rf", "rm-rf"),
    ("rm --recursive --force dir", "rm-rf"),
    ("rm -rfv node_modules", "rm-rf"),
    ("sudo rm -rf /", "rm-rf"),
    ("/bin/rm -rf tmp", "rm-rf"),
    ("\\rm -rf tmp", "rm-rf"),
    ("cd /srv && rm -rf cache", "rm-rf"),
    ("FOO=1 rm -rf x", "rm-rf"),
    ("if true; then rm -rf x; fi", "rm-rf"),
    ("find . -type d -name __pycache__ -exec rm -rf {} +", "rm-rf"),
    ("ls | xargs rm -r", "rm-rf"),
    ('bash -c "rm -rf build"', "rm-rf"),
    ("python -c \"import os; os.system('rm -rf x')\"", "rm-rf"),
    ('echo "rm -rf /" | sh', "rm-rf"),
    ("echo $(rm -rf x)", "rm-rf"),
    ("echo `rm -rf x`", "rm-rf"),
    ("rm file.txt", "rm"),
    ("rm -f app.log", "rm"),
    ("rm -i notes.md", "rm"),
    ("unlink current", "rm"),
    ("shred -u id_rsa", "rm"),
    ("find . -name '*.pyc' -exec rm {} \\;", "rm"),
    ("ls *.bak | xargs rm", "rm"),
    ("find . -name '*.tmp' -delete", "find-delete"),
    ("find /tmp -mtime +7 -delete", "find-delete"),
    ("rd /s /q build", "windows-delete"),
    ("rmdir /S dir", "windows-delete"),
    ("del /q /s *.tmp", "windows-delete"),
    ("Remove-Item -Recurse -Force build", "windows-delete"),
    ("remove-item .\\x -recurse", "windows-delete"),
    ("git reset --hard", "git-reset-hard"),
    ("git reset --hard HEAD~3", "git-reset-hard"),
    ("git -C repo reset --hard origin/main", "git-reset-hard"),
    ("git reset origin/main --hard", "git-reset-hard"),
    ("git clean -fd", "git-clean"),
    ("git clean -fdx", "git-clean"),
    ("git clean -f", "git-clean"),
    ("git clean --force -d", "git-clean"),
    ("git checkout -- .", "git-discard"),
    ("git checkout .", "git-discard"),
    ("git checkout -- src/app.py", "git-discard"),
    ("git checkout main -- src/app.py", "git-discard"),
    ("git checkout -f main", "git-discard"),
    ("git restore .", "git-discard"),
    ("git restore src/app.py", "git-discard"),
    ("git restore --staged --worktree src/app.py", "git-discard"),
    ("git switch --discard-changes main", "git-discard"),
    ("git switch -f main", "git-discard"),
    ("git stash drop", "git-stash-drop"),
    ("git stash drop stash@{1}", "git-stash-drop"),
    ("git stash clear", "git-stash-drop"),
    ("git branch -D feature", "git-branch-delete"),
    ("git branch -d -f feature", "git-branch-delete"),
    ("git branch --delete --force feature", "git-branch-delete"),
    ("git branch -df feature", "git-branch-delete"),
    ("git push --force", "git-push-force"),
    ("git push -f origin main", "git-push-force"),
    ("git push origin main --force", "git-push-force"),
    ("git push --force-with-lease", "git-push-force"),
    ("git push --force-with-lease=main:abc123 origin main", "git-push-force"),
    ("git push origin +main", "git-push-force"),
    ("git push -uf origin feature", "git-push-force"),
    ("git push origin --delete feature", "git-push-delete"),
    ("git push origin -d feature", "git-push-delete"),
    ("git push origin :feature", "git-push-delete"),
    ("git rebase main", "git-rebase"),
    ("git rebase -i HEAD~3", "git-rebase"),
    ("git rebase --onto main topic-a topic-b", "git-rebase"),
    ("git filter-branch --tree-filter 'rm x' HEAD", "git-filter"),
    ("git filter-repo --path secrets --invert-paths", "git-filter"),
    ('psql -c "DROP TABLE users"', "sql-drop"),
    ('sqlite3 app.db "drop table if exists t"', "sql-drop"),
    ('mysql -e "DROP DATABASE prod"', "sql-drop"),
    ('psql -c "DROP SCHEMA public CASCADE"', "sql-drop"),
    ("dropdb mydb", "sql-drop"),
    ('psql -c "TRUNCATE users"', "sql-truncate"),
    ('mysql -e "truncate table logs"', "sql-truncate"),
    ('psql -c "TRUNCATE ONLY events"', "sql-truncate"),
    ('psql -c "DELETE FROM users"', "sql-delete-all"),
    ('sqlite3 app.db "delete from t;"', "sql-delete-all"),
    ('psql -c "DELETE FROM users; SELECT * FROM x WHERE y"', "sql-delete-all"),
    ('psql -c "UPDATE users SET admin = true"', "sql-update-all"),
    ('sqlite3 app.db "update t set x = 1"', "sql-update-all"),
    ("redis-cli FLUSHALL", "redis-flush"),
    ("redis-cli -n 2 flushdb", "redis-flush"),
    ("truncate -s 0 app.log", "truncate"),
    ("truncate --size 0 app.log", "truncate"),
    ("dd if=/dev/zero of=/dev/sda bs=1M", "dd"),
    ("sudo dd of=disk.img if=image.iso", "dd"),
    ("mkfs.ext4 /dev/sdb1", "mkfs"),
    ("mkfs -t xfs /dev/sdc", "mkfs"),
    ("wipefs -a /dev/sdb", "mkfs"),
    ("docker system prune -af", "docker-prune"),
    ("docker volume prune", "docker-prune"),
    ("docker image prune -a", "docker-prune"),
    ("docker volume rm data", "docker-prune"),
    ("docker compose down -v", "docker-prune"),
    ("podman system prune", "docker-prune"),
    ("kubectl delete pod web-1", "kubectl-delete"),
    ("kubectl -n prod delete deployment api", "kubectl-delete"),
    ("helm uninstall web", "helm-uninstall"),
    ("helm -n prod delete web", "helm-uninstall"),
    ("terraform destroy", "infra-destroy"),
    ("terraform -chdir=infra destroy -auto-approve", "infra-destroy"),
    ("terraform apply -destroy", "infra-destroy"),
    ("tofu destroy", "infra-destroy"),
    ("pulumi destroy --yes", "infra-destroy"),
    ("cdk destroy", "infra-destroy"),
    ("terraform apply", "infra-apply"),
    ("terraform apply -auto-approve plan.out", "infra-apply"),
    ("tofu apply", "infra-apply"),
    ("pulumi up", "infra-apply"),
    ("npx cdk deploy", "infra-apply"),
    ("alembic upgrade head", "alembic-migrate"),
    ("alembic downgrade -1", "alembic-migrate"),
    ("alembic -c alembic.ini upgrade head", "alembic-migrate"),
    ("alembic stamp head", "alembic-migrate"),
    ("python manage.py migrate", "django-migrate"),
    ("./manage.py migrate app 0003", "django-migrate"),
    ("django-admin migrate", "django-migrate"),
    ("npx prisma migrate dev", "prisma-migrate"),
    ("prisma migrate deploy", "prisma-migrate"),
    ("prisma migrate reset --force", "prisma-migrate"),
    ("prisma db push", "prisma-migrate"),
    ("rails db:migrate", "rails-migrate"),
    ("bin/rails db:rollback STEP=2", "rails-migrate"),
    ("bundle exec rake db:migrate", "rails-migrate"),
    ("rails db:drop", "rails-migrate"),
    ("flyway migrate", "flyway"),
    ("flyway -url=jdbc:postgresql://db/app clean", "flyway"),
    ("liquibase update", "liquibase"),
    ("liquibase --changelog-file=db.xml rollback-count 1", "liquibase"),
    ("liquibase dropAll", "liquibase"),
    ("npx knex migrate:latest", "js-migrate"),
    ("npx sequelize-cli db:migrate", "js-migrate"),
    ("npx typeorm migration:run", "js-migrate"),
    ("sequelize db:migrate:undo:all", "js-migrate"),
    ("diesel migration run", "db-migrate"),
    ("sqlx migrate run", "db-migrate"),
    ('goose postgres "dbname=app" up', "db-migrate"),
    ("dbmate up", "db-migrate"),
    ("atlas migrate apply", "db-migrate"),
    ("chmod -R 755 dir", "chmod-recursive"),
    ("chmod 755 -R dir", "chmod-recursive"),
    ("chown -R www-data: /var/www", "chmod-recursive"),
    ("chgrp -R staff dir", "chmod-recursive"),
    ("chmod --recursive u+w dir", "chmod-recursive"),
    ("chmod 777 file", "chmod-world"),
    ("chmod 0777 dir", "chmod-world"),
    ("chmod 666 file", "chmod-world"),
    ("chmod o+w file", "chmod-world"),
    ("chmod a+rwx file", "chmod-world"),
    ("curl -fsSL https://example.com/install.sh | bash", "pipe-to-shell"),
    ("wget -qO- https://example.com/i | sh", "pipe-to-shell"),
    ("curl https://example.com/i | sudo sh", "pipe-to-shell"),
    ("bash <(curl -s https://example.com/i)", "pipe-to-shell"),
    ("git ls-files | xargs sed -i 's/a/b/'", "mass-edit"),
    ("find . -name '*.py' -exec sed -i 's/a/b/' {} +", "mass-edit"),
    ("sed -i 's/a/b/' $(git ls-files)", "mass-edit"),
    ("sed -i 's/a/b/' src/**/*.py", "mass-edit"),
    ("grep -rl foo . | xargs perl -pi -e 's/foo/bar/'", "mass-edit"),
    ("npx jscodeshift -t transform.js src", "mass-edit"),
]

# Near misses: the command must not match that pattern (it may match another one).
COMMAND_NON_MATCHES: list[tuple[str, str]] = [
    ("rm -f file", "rm-rf"),
    ("rm file-r.txt", "rm-rf"),
    ("rm x; ls -R", "rm-rf"),
    ("grep -rf patterns.txt .", "rm-rf"),
    ("git rm -r dir", "rm-rf"),
    ("echo 'rm -rf /'", "rm-rf"),
    ("charm -R x", "rm-rf"),
    ("cat rm-rf.sh", "rm-rf"),
    ("git rm --cached x", "rm"),
    ("docker rm web", "rm"),
    ("npm rm lodash", "rm"),
    ("rmdir empty", "rm"),
    ("printf 'rm x'", "rm"),
    ("ls  # rm x", "rm"),
    ("git commit -m 'rm old file'", "rm"),
    ("term x", "rm"),
    ("rm", "rm"),
    ("find . -name delete", "find-delete"),
    ("find . -name '*-delete'", "find-delete"),
    ("find . -type f", "find-delete"),
    ("rmdir /srv/empty", "windows-delete"),
    ("del x", "windows-delete"),
    ("Remove-Item x", "windows-delete"),
    ("git reset --soft HEAD~1", "git-reset-hard"),
    ("git reset HEAD file", "git-reset-hard"),
    ("git reset --mixed", "git-reset-hard"),
    ("git clean -n", "git-clean"),
    ("git clean --dry-run -d", "git-clean"),
    ("git clean -nd", "git-clean"),
    ("git cleanup", "git-clean"),
    ("git checkout main", "git-discard"),
    ("git checkout -b feature", "git-discard"),
    ("git checkout -", "git-discard"),
    ("git restore --staged x", "git-discard"),
    ("git restore -S x", "git-discard"),
    ("git switch main", "git-discard"),
    ("git stash", "git-stash-drop"),
    ("git stash pop", "git-stash-drop"),
    ("git stash list", "git-stash-drop"),
    ("git branch -d merged", "git-branch-delete"),
    ("git branch --delete merged", "git-branch-delete"),
    ("git branch -a", "git-branch-delete"),
    ("git branch new-Dx", "git-branch-delete"),
    ("git push", "git-push-force"),
    ("git push origin main", "git-push-force"),
    ("git push -u origin feature", "git-push-force"),
    ("git push --follow-tags", "git-push-force"),
    ("git push --tags", "git-push-force"),
    ("git push --set-upstream origin feature", "git-push-force"),
    ("git push origin main:main", "git-push-delete"),
    ("git push origin HEAD:refs/heads/x", "git-push-delete"),
    ("git push --dry-run", "git-push-delete"),
    ("git rebase --abort", "git-rebase"),
    ("git log --grep rebase", "git-rebase"),
    ("git pull", "git-rebase"),
    ("git log --filter=blob:none", "git-filter"),
    ("git clone --filter=blob:none https://x/y.git", "git-filter"),
    ("psql -c 'SELECT * FROM drops'", "sql-drop"),
    ("echo 'DROP TABLE x'", "sql-drop"),
    ("git commit -m 'drop table users'", "sql-drop"),
    ("dropbox start", "sql-drop"),
    ("python -c 'f.truncate(0)'", "sql-truncate"),
    ("psql -c 'SELECT truncate_log()'", "sql-truncate"),
    ('psql -c "DELETE FROM users WHERE id = 1"', "sql-delete-all"),
    ('psql -c "delete from t where x > 1"', "sql-delete-all"),
    ("git commit -m 'DELETE FROM users'", "sql-delete-all"),
    ('psql -c "UPDATE users SET a = 1 WHERE id = 2"', "sql-update-all"),
    ("apt update", "sql-update-all"),
    ("pip install --upgrade pip", "sql-update-all"),
    ("redis-cli GET key", "redis-flush"),
    ("python flush_logs.py", "redis-flush"),
    ("python -c 'f.truncate()'", "truncate"),
    ("less --truncate x", "truncate"),
    ("truncate", "truncate"),
    ("dd if=/dev/urandom bs=16 count=1", "dd"),
    ("git add of=x", "dd"),
    ("mkfifo pipe", "mkfs"),
    ("format", "mkfs"),
    ("mkdir fs", "mkfs"),
    ("docker ps", "docker-prune"),
    ("docker compose down", "docker-prune"),
    ("docker volume ls", "docker-prune"),
    ("docker rm web", "docker-prune"),
    ("kubectl get pods", "kubectl-delete"),
    ("kubectl get deploy delete-me", "kubectl-delete"),
    ("kubectl apply -f web.yaml", "kubectl-delete"),
    ("helm install web ./chart", "helm-uninstall"),
    ("helm list", "helm-uninstall"),
    ("terraform plan -destroy", "infra-destroy"),
    ("terraform plan", "infra-destroy"),
    ("pulumi preview", "infra-destroy"),
    ("terraform plan", "infra-apply"),
    ("terraform init", "infra-apply"),
    ("pulumi preview", "infra-apply"),
    ("cdk synth", "infra-apply"),
    ("alembic history", "alembic-migrate"),
    ("alembic current", "alembic-migrate"),
    ("alembic revision -m 'add upgrade flag'", "alembic-migrate"),
    ("python manage.py makemigrations", "django-migrate"),
    ("python manage.py showmigrations", "django-migrate"),
    ("python manage.py runserver", "django-migrate"),
    ("prisma generate", "prisma-migrate"),
    ("prisma migrate status", "prisma-migrate"),
    ("prisma migrate diff", "prisma-migrate"),
    ("rails db:migrate:status", "rails-migrate"),
    ("rails server", "rails-migrate"),
    ("rails db:seed", "rails-migrate"),
    ("flyway info", "flyway"),
    ("flyway validate", "flyway"),
    ("liquibase status", "liquibase"),
    ("liquibase update-sql", "liquibase"),
    ("liquibase updateSQL", "liquibase"),
    ("npx knex migrate:make add_users", "js-migrate"),
    ("npx typeorm migration:generate x", "js-migrate"),
    ("npx sequelize-cli db:seed:all", "js-migrate"),
    ("diesel migration generate x", "db-migrate"),
    ("sqlx migrate add x", "db-migrate"),
    ("goose status", "db-migrate"),
    ("dbmate new x", "db-migrate"),
    ("atlas migrate diff", "db-migrate"),
    ("chmod +x run.sh", "chmod-recursive"),
    ("chmod 644 file", "chmod-recursive"),
    ("chown user:group file", "chmod-recursive"),
    ("ls -R", "chmod-recursive"),
    ("chmod 755 file", "chmod-world"),
    ("chmod u+w file", "chmod-world"),
    ("chmod g+w file", "chmod-world"),
    ("chmod 644 file", "chmod-world"),
    ("curl -o install.sh https://example.com/i", "pipe-to-shell"),
    ("curl https://example.com/api | jq .", "pipe-to-shell"),
    ("wget https://example.com/file", "pipe-to-shell"),
    ("sed -i 's/a/b/' file.py", "mass-edit"),
    ("sed -n '1p' file", "mass-edit"),
    ("find . -name '*.py' | xargs wc -l", "mass-edit"),
    ("xargs sed 's/a/b/'", "mass-edit"),
]

# Everyday commands that must not be risky at all.
SAFE_COMMANDS: list[str] = [
    "git status",
    "git push",
    "git push origin feature",
    "git pull --ff-only",
    "git commit -am 'rm -rf build dir; DROP TABLE notes'",
    "git log --oneline -n 5",
    "git diff HEAD~1",
    "git reset --soft HEAD~1",
    "git checkout -b feature",
    "git branch -d merged",
    "git stash",
    "ls -la",
    "pytest -q",
    "grep -rf patterns.txt .",
    "rg -n 'rm -rf' src",
    "echo 'rm -rf /'",
    'echo "DROP TABLE users" > notes.txt',
    "printf 'git push --force\\n'",
    "cat README.md",
    "format",
    "npm install",
    "python -m pip install -e .",
    "make test",
    "docker build -t app .",
    "kubectl get pods",
    "terraform plan",
    "sed -i 's/a/b/' file.py",
    "mkdir -p build",
    "cp -r src dst",
    "# rm -rf / (a comment)",
    "",
]


def test_every_default_command_pattern_has_matching_and_near_miss_examples() -> None:
    defaults = {p.slug for p in DEFAULT_COMMAND_PATTERNS}
    assert {slug for _, slug in COMMAND_MATCHES} == defaults
    assert {slug for _, slug in COMMAND_NON_MATCHES} == defaults


def test_default_command_pattern_slugs_are_unique() -> None:
    names = [p.slug for p in DEFAULT_COMMAND_PATTERNS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize(("command", "slug"), COMMAND_MATCHES)
def test_command_matches_its_pattern(command: str, slug: str) -> None:
    assert slug in slugs(Operation(command=command))


@pytest.mark.parametrize(("command", "slug"), COMMAND_NON_MATCHES)
def test_near_miss_does_not_match_that_pattern(command: str, slug: str) -> None:
    assert slug not in slugs(Operation(command=command))


@pytest.mark.parametrize("command", SAFE_COMMANDS)
def test_everyday_command_is_not_risky(command: str) -> None:
    assert classify(Operation(command=command)) == []


def test_recursive_delete_is_reported_before_plain_delete() -> None:
    assert slugs(Operation(command="rm -rf build")) == ["rm-rf", "rm"]


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ('echo "rm -rf /"', ""),
        ('echo "rm -rf /" | sh', 'echo "rm -rf /" | sh'),
        ("echo hi; rm -rf x", "; rm -rf x"),
        ("echo $(rm -rf x)", "echo $(rm -rf x)"),
        ("echo hi || rm x", "|| rm x"),
        ("ls # rm -rf x", "ls "),
        ("git commit -m 'a; rm -rf b'", ""),
        ("FOO=1 echo 'rm -rf'", ""),
        ("ls 2>&1 && echo 'rm x'", "ls 2>&1 &&"),
    ],
)
def test_printed_or_searched_text_is_blanked_and_the_rest_kept(command: str, expected: str) -> None:
    assert executed_text(command) == expected


# -- path patterns ----------------------------------------------------------------------

PATH_MATCHES: list[tuple[str, str]] = [
    ("src/auth/login.py", "auth-change"),
    ("app/authz/policy.py", "auth-change"),
    ("/home/u/proj/app/authentication/views.py", "auth-change"),
    ("src/oauth_client.py", "auth-change"),
    ("src/authorization.py", "auth-change"),
    ("web/components/AuthForm.tsx", "auth-change"),
    ("lib/jwt_tokens.ts", "auth-change"),
    ("app/services/password_reset.rb", "auth-change"),
    ("src/security/headers.py", "security-change"),
    ("pkg/crypto/aes.go", "security-change"),
    ("src/encrypt.py", "security-change"),
    ("lib/bcrypt_helper.rb", "security-change"),
    ("certs/server.pem", "key-material"),
    ("deploy/tls.key", "key-material"),
    ("client.p12", "key-material"),
    ("client.pfx", "key-material"),
    ("android/keystore.jks", "key-material"),
    ("android/release.keystore", "key-material"),
    ("home/u/.ssh/id_rsa", "key-material"),
    ("home/u/.ssh/id_ed25519.pub", "key-material"),
    ("id_ecdsa", "key-material"),
    ("home/u/.ssh/config", "key-material"),
    (".env", "secrets-change"),
    ("app/.env.production", "secrets-change"),
    ("config/secrets/db.yml", "secrets-change"),
    ("k8s/db-secret.yaml", "secrets-change"),
    ("config/credentials.json", "secrets-change"),
    ("home/u/.npmrc", "secrets-change"),
    (".pypirc", "secrets-change"),
    (".netrc", "secrets-change"),
    ("web/.htpasswd", "secrets-change"),
    ("infra/prod.tfvars", "secrets-change"),
    ("app/rbac/roles.py", "permissions-change"),
    ("src/user_permissions.py", "permissions-change"),
    ("policy/authz.rego", "permissions-change"),
    ("etc/sudoers", "permissions-change"),
    (".github/CODEOWNERS", "permissions-change"),
    (".github/workflows/ci.yml", "ci-change"),
    ("/home/me/repo/.github/workflows/release.yaml", "ci-change"),
    ("C:\\repo\\.github\\workflows\\ci.yml", "ci-change"),
    (".github/actions/setup/action.yml", "ci-change"),
    (".gitlab-ci.yml", "ci-change"),
    (".gitlab-ci/build.yml", "ci-change"),
    (".circleci/config.yml", "ci-change"),
    ("Jenkinsfile", "ci-change"),
    ("azure-pipelines.yml", "ci-change"),
    (".travis.yml", "ci-change"),
    ("bitbucket-pipelines.yml", "ci-change"),
    (".buildkite/pipeline.yml", "ci-change"),
    (".drone.yml", "ci-change"),
    ("app/migrations/0001_initial.py", "migration-change"),
    ("db/migrate/20240101_add_users.rb", "migration-change"),
    ("alembic/versions/abc123_add_users.py", "migration-change"),
    ("alembic.ini", "migration-change"),
    ("db/schema.rb", "schema-change"),
    ("prisma/models.prisma", "schema-change"),
    ("proto/user.proto", "api-change"),
    ("idl/service.thrift", "api-change"),
    ("avro/user.avsc", "api-change"),
    ("openapi.yaml", "api-change"),
    ("api/swagger.json", "api-change"),
    ("pyproject.toml", "manifest-change"),
    ("./setup.py", "manifest-change"),
    ("setup.cfg", "manifest-change"),
    ("requirements-dev.txt", "manifest-change"),
    ("Pipfile", "manifest-change"),
    ("web/package.json", "manifest-change"),
    ("crates/core/Cargo.toml", "manifest-change"),
    ("go.mod", "manifest-change"),
    ("Gemfile", "manifest-change"),
    ("pom.xml", "manifest-change"),
    ("app/build.gradle.kts", "manifest-change"),
    ("settings.gradle", "manifest-change"),
    ("CMakeLists.txt", "manifest-change"),
    ("src/App.csproj", "manifest-change"),
    ("composer.json", "manifest-change"),
    ("Dockerfile", "infra-change"),
    ("docker/Dockerfile.dev", "infra-change"),
    ("app.dockerfile", "infra-change"),
    ("docker-compose.override.yml", "infra-change"),
    ("compose.yaml", "infra-change"),
    ("infra/main.tf", "infra-change"),
    ("deploy/k8s/web.yaml", "infra-change"),
    ("charts/web/Chart.yaml", "infra-change"),
    ("src/lifecycle/__init__.py", "package-api-change"),
    ("/home/u/proj/src/pkg/__init__.py", "package-api-change"),
]

PATH_NON_MATCHES: list[tuple[str, str]] = [
    ("src/author.py", "auth-change"),
    ("src/book_authors.py", "auth-change"),
    ("src/authored_by.py", "auth-change"),
    ("docs/oauth.md", "auth-change"),
    ("src/secure_filename.py", "security-change"),
    ("docs/crypto.md", "security-change"),
    ("src/keyboard.py", "key-material"),
    ("docs/keys.md", "key-material"),
    ("certs/server.pem.md", "key-material"),
    ("src/environment.py", "secrets-change"),
    ("docs/envelope.md", "secrets-change"),
    ("src/iambic.py", "permissions-change"),
    ("docs/policy.md", "permissions-change"),
    (".github/ISSUE_TEMPLATE/bug.md", "ci-change"),
    ("docs/ci.md", "ci-change"),
    ("src/workflows/engine.py", "ci-change"),
    ("src/migrate_data.py", "migration-change"),
    ("docs/migrations.md", "migration-change"),
    ("src/schemas.py", "schema-change"),
    ("src/json_schema.py", "schema-change"),
    ("src/prototype.py", "api-change"),
    ("package-lock.json", "manifest-change"),
    ("src/setup_helpers.py", "manifest-change"),
    ("go.sum", "manifest-change"),
    ("Cargo.lock", "manifest-change"),
    ("docs/requirements.md", "manifest-change"),
    ("docs/docker.md", "infra-change"),
    ("src/components/charts/Bar.tsx", "infra-change"),
    ("terraform.tfstate", "infra-change"),
    ("src/pkg/sub/__init__.py", "package-api-change"),
    ("lifecycle/__init__.py", "package-api-change"),
]

SAFE_PATHS: list[str] = [
    "README.md",
    "src/app/views.py",
    "tests/test_views.py",
    "docs/index.md",
    "src/author.py",
    "package-lock.json",
    "src/pkg/sub/__init__.py",
    "lifecycle/triggers/time.py",
]


def _pattern(slug: str) -> PathPattern:
    return next(p for p in DEFAULT_PATH_PATTERNS if p.slug == slug)


def test_every_default_glob_has_a_matching_example() -> None:
    matched = {(slug, _pattern(slug).match(path)) for path, slug in PATH_MATCHES}
    every = {(p.slug, g) for p in DEFAULT_PATH_PATTERNS for g in p.globs}
    assert every - matched == set()


def test_every_default_path_pattern_has_a_near_miss_example() -> None:
    assert {slug for _, slug in PATH_NON_MATCHES} == {p.slug for p in DEFAULT_PATH_PATTERNS}


@pytest.mark.parametrize(("path", "slug"), PATH_MATCHES)
def test_path_matches_its_pattern(path: str, slug: str) -> None:
    assert slug in slugs(Operation(paths=(path,)))


@pytest.mark.parametrize(("path", "slug"), PATH_NON_MATCHES)
def test_path_near_miss_does_not_match_that_pattern(path: str, slug: str) -> None:
    assert slug not in slugs(Operation(paths=(path,)))


@pytest.mark.parametrize("path", SAFE_PATHS)
def test_everyday_path_is_not_risky(path: str) -> None:
    assert classify(Operation(paths=(path,))) == []


@pytest.mark.parametrize(
    ("glob", "regex"),
    [
        ("**/auth/**", "(?:[^/]*/)*auth(?:/.*)?"),
        ("*.py", "[^/]*\\.py"),
        ("file?.txt", "file[^/]\\.txt"),
        ("{a,b}.md", "(?:a|b)\\.md"),
        ("[!x]y", "[^x]y"),
        ("a/**/b", "a/(?:[^/]*/)*b"),
        ("a**b", "a.*b"),
    ],
)
def test_glob_translates_to_regex(glob: str, regex: str) -> None:
    assert glob_regex(glob) == regex


def test_path_match_reports_how_many_more_paths_matched() -> None:
    op = Operation(paths=("src/auth/a.py", "README.md", "src/auth/b.py", "src/auth/c.py"))
    (match,) = classify(op)
    assert (match.slug, match.subject, match.pattern) == (
        "auth-change",
        "src/auth/a.py (and 2 more)",
        "**/{auth,authn,authz}/**",
    )


# -- bulk, deletes flag, kinds ----------------------------------------------------------


def test_more_than_max_files_is_bulk_but_exactly_max_is_not() -> None:
    assert slugs(Operation(files_count=51)) == ["bulk-51-files"]
    assert slugs(Operation(files_count=50)) == []


def test_bulk_counts_paths_when_no_files_count_is_given() -> None:
    paths = tuple(f"src/mod{i}.py" for i in range(63))
    assert slugs(Operation(name="rename module", paths=paths)) == ["bulk-63-files"]


def test_max_files_is_configurable() -> None:
    settings = RiskSettings(max_files=3)
    assert [m.slug for m in classify(Operation(files_count=4), settings)] == ["bulk-4-files"]
    assert classify(Operation(files_count=3), settings) == []


def test_deletes_flag_is_a_deletion() -> None:
    assert classify(Operation(name="remove legacy module", deletes=True)) == [
        RiskMatch(
            RiskCategory.DELETION,
            "delete",
            "operation deletes files",
            "deletes=True",
            "remove legacy module",
        )
    ]


def test_a_bulk_match_names_the_limit_and_the_count() -> None:
    assert classify(Operation(files_count=51)) == [
        RiskMatch(
            RiskCategory.BULK, "bulk-51-files", "more than 50 files", "touched > 50", "51 files"
        )
    ]


@pytest.mark.parametrize(
    ("paths", "subject"),
    [
        (("src/auth/a.py",), "src/auth/a.py"),
        (("src/auth/a.py", "README.md", "src/auth/b.py"), "src/auth/a.py (and 1 more)"),
    ],
)
def test_a_path_match_names_the_first_path_and_counts_the_others(
    paths: tuple[str, ...], subject: str
) -> None:
    assert classify(Operation(paths=paths)) == [
        RiskMatch(
            RiskCategory.SECURITY,
            "auth-change",
            "authentication code",
            "**/{auth,authn,authz}/**",
            subject,
        )
    ]


def test_a_declared_kind_match_names_the_kind() -> None:
    assert classify(Operation(kind="Architecture")) == [
        RiskMatch(
            RiskCategory.ARCHITECTURE,
            "architecture-change",
            "declared architecture operation",
            "kind=Architecture",
            "Architecture",
        )
    ]


def test_a_command_match_names_the_pattern_and_its_regex() -> None:
    (match, _) = classify(Operation(command="rm -rf build"))
    rm_rf = next(p for p in DEFAULT_COMMAND_PATTERNS if p.slug == "rm-rf")
    assert match == RiskMatch(
        RiskCategory.DELETION, "rm-rf", rm_rf.name, rm_rf.regex, "rm -rf build"
    )


def test_a_match_of_no_command_text_shows_the_whole_command() -> None:
    anything = CommandPattern("any", "any command", "deletion", r"^")
    settings = RiskSettings(commands=(anything,))
    assert classify(Operation(command="echo hi"), settings) == [
        RiskMatch(RiskCategory.DELETION, "any", "any command", "^", "echo hi")
    ]


def test_the_settings_say_which_programs_are_inert() -> None:
    settings = RiskSettings(inert_programs=frozenset())
    assert [m.slug for m in classify(Operation(command="echo rm -rf x"), settings)] == [
        "rm-rf",
        "rm",
    ]
    assert classify(Operation(command="echo rm -rf x")) == []


@pytest.mark.parametrize("pipe", ["|", "|&"])
def test_an_inert_program_piped_into_another_is_run_text(pipe: str) -> None:
    command = f"echo rm -rf x {pipe} sh"
    assert executed_text(command) == command


@pytest.mark.parametrize(
    ("kind", "category", "slug"),
    [
        ("architecture", RiskCategory.ARCHITECTURE, "architecture-change"),
        ("Security", RiskCategory.SECURITY, "security-change"),
        ("security_sensitive", RiskCategory.SECURITY, "security-change"),
        ("deletion", RiskCategory.DELETION, "delete"),
        ("ci", RiskCategory.CI, "ci-change"),
        ("major refactor", RiskCategory.BULK, "bulk-change"),
    ],
)
def test_declared_kind_is_risky(kind: str, category: RiskCategory, slug: str) -> None:
    (match,) = classify(Operation(name="x", kind=kind))
    assert (match.category, match.slug) == (category, slug)


@pytest.mark.parametrize("kind", ["edit", "refactor", "test", "", None])
def test_ordinary_kind_is_not_risky(kind: str | None) -> None:
    assert classify(Operation(name="x", kind=kind)) == []


def test_kinds_are_configurable() -> None:
    settings = RiskSettings(kinds={"refactor": "architecture"})
    assert [m.slug for m in classify(Operation(kind="refactor"), settings)] == [
        "architecture-change"
    ]
    assert classify(Operation(kind="security"), settings) == []


# -- the evaluator ----------------------------------------------------------------------


def test_risky_command_yields_a_risk_call_named_for_the_pattern() -> None:
    call = RiskTrigger().evaluate(before(Operation(command="rm -rf build")), FACTS, NOW)
    assert call is not None
    assert call.type is CheckpointType.RISK
    assert call.trigger == "risk:deletion"
    assert call.key == f"checkpoints/risk-rm-rf-{format_ts(NOW)}"
    assert call.operation == "rm -rf build"
    assert call.reason == (
        "before rm -rf build: recursive delete (rm -r, rm -rf) [deletion]: rm -rf build; "
        "file delete (rm, unlink, shred) [deletion]: rm -rf build"
    )


def test_bulk_operation_key_names_the_file_count() -> None:
    op = Operation(name="rename Foo to Bar", files_count=63)
    call = RiskTrigger().evaluate(before(op), FACTS, NOW)
    assert call is not None
    assert (call.trigger, call.key, call.operation) == (
        "risk:bulk",
        f"checkpoints/risk-bulk-63-files-{format_ts(NOW)}",
        "rename Foo to Bar",
    )


def test_path_only_operation_is_described_by_its_paths() -> None:
    op = Operation(paths=("src/auth/login.py",))
    call = RiskTrigger().evaluate(before(op), FACTS, NOW)
    assert call is not None
    assert (call.trigger, call.key, call.operation) == (
        "risk:security",
        f"checkpoints/risk-auth-change-{format_ts(NOW)}",
        "change src/auth/login.py",
    )


def test_reason_lists_three_matches_and_no_count_when_there_are_three() -> None:
    op = Operation(name="purge", deletes=True, files_count=60, kind="ci")
    call = RiskTrigger().evaluate(before(op), FACTS, NOW)
    assert call is not None
    assert call.reason == (
        "before purge: operation deletes files [deletion]: purge; "
        "more than 50 files [bulk]: 60 files; declared ci operation [ci]: ci"
    )


def test_reason_lists_three_matches_and_counts_the_rest() -> None:
    op = Operation(
        command="rm -rf build",
        deletes=True,
        paths=(".env", "Dockerfile", ".github/workflows/ci.yml"),
    )
    call = RiskTrigger().evaluate(before(op), FACTS, NOW)
    assert call is not None
    assert call.reason.endswith("; and 3 more")
    assert call.reason.count("[") == 3


def test_safe_operation_yields_no_call() -> None:
    assert RiskTrigger().evaluate(before(Operation(command="pytest -q")), FACTS, NOW) is None


@pytest.mark.parametrize("event", [e for e in Event if e is not Event.BEFORE_OPERATION])
def test_only_before_operation_is_evaluated(event: Event) -> None:
    activity = Activity(event, NOW, operation=Operation(command="rm -rf /"))
    assert RiskTrigger().evaluate(activity, FACTS, NOW) is None


def test_before_operation_without_an_operation_yields_no_call() -> None:
    assert RiskTrigger().evaluate(Activity(Event.BEFORE_OPERATION, NOW), FACTS, NOW) is None


def test_custom_pattern_extends_the_defaults() -> None:
    deploy = CommandPattern(
        "deploy-prod", "production deploy", "architecture", r"\bdeploy\s+prod\b"
    )
    trigger = RiskTrigger(RiskSettings(commands=(*DEFAULT_COMMAND_PATTERNS, deploy)))
    call = trigger.evaluate(before(Operation(command="make deploy prod")), FACTS, NOW)
    assert call is not None
    assert call.key == f"checkpoints/risk-deploy-prod-{format_ts(NOW)}"
    assert trigger.classify(Operation(command="rm -rf x"))[0].slug == "rm-rf"


def test_default_settings_are_the_module_defaults() -> None:
    assert RiskTrigger().settings == DEFAULT_SETTINGS


def _regex_error(regex: str, flags: int = 0) -> str:
    try:
        re.compile(regex, flags)
    except re.error as err:
        return str(err)
    raise AssertionError(f"{regex!r} compiles")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: CommandPattern("bad", "x", "deletion", "(unclosed"),
            f"risk pattern '(unclosed' is not a valid regex: {_regex_error('(unclosed')}",
        ),
        (
            lambda: CommandPattern("bad", "x", "deletion", None),
            "risk pattern None is not a valid regex: "
            "first argument must be string or compiled pattern",
        ),
        (
            lambda: CommandPattern("ok", "x", "dangerous", "x"),
            "unknown risk category 'dangerous'; known: deletion, architecture, security, ci, bulk",
        ),
        (
            lambda: PathPattern("ok", "x", "ci", ()),
            "path pattern 'ok' has no globs; give at least one",
        ),
        (
            lambda: PathPattern("ok", "x", "ci", ("[z-a]",)),
            "risk pattern '(?:^|/)[z-a]$' is not a valid regex: "
            + _regex_error("(?:^|/)[z-a]$", re.IGNORECASE),
        ),
        (lambda: RiskSettings(max_files=-1), "max_files must be an integer >= 0, got -1"),
        (lambda: RiskSettings(max_files=True), "max_files must be an integer >= 0, got True"),
        (lambda: RiskSettings(max_files="3"), "max_files must be an integer >= 0, got '3'"),
        (lambda: RiskSettings(commands=("rm",)), "expected CommandPattern items, got 'rm'"),
        (lambda: RiskSettings(paths=(".env",)), "expected PathPattern items, got '.env'"),
        (
            lambda: RiskSettings(kinds={"x": "worse"}),
            "unknown risk category 'worse'; known: deletion, architecture, security, ci, bulk",
        ),
    ],
)
def test_bad_settings_raise_invalid_settings(build: object, message: str) -> None:
    with pytest.raises(InvalidSettings) as raised:
        build()  # type: ignore[operator]
    assert str(raised.value) == message


def test_zero_max_files_makes_any_file_a_bulk_change() -> None:
    settings = RiskSettings(max_files=0)
    assert [m.slug for m in classify(Operation(files_count=1), settings)] == ["bulk-1-files"]
    assert classify(Operation(files_count=0), settings) == []


# -- properties (rule 7: a risky operation never proceeds without a checkpoint) ---------

_DIRS = st.lists(st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True), max_size=4)
_PREFIXES = st.sampled_from(["", "cd /srv/app && ", "echo start; ", "FOO=1 ", "time ", "set -e\n"])
_SUFFIXES = st.sampled_from(["", " && echo done", "; ls", " || true", " 2>&1", "\n"])


@given(example=st.sampled_from(COMMAND_MATCHES), prefix=_PREFIXES, suffix=_SUFFIXES)
def test_every_default_command_pattern_yields_a_call_in_any_context(
    example: tuple[str, str], prefix: str, suffix: str
) -> None:
    command, slug = example
    op = Operation(command=prefix + command + suffix)
    call = RiskTrigger().evaluate(before(op), FACTS, NOW)
    assert call is not None
    assert call.type is CheckpointType.RISK
    assert slug in slugs(op)
    parsed = parse_checkpoint_key(call.key)
    assert parsed is not None
    assert parsed[:2] == ("risk", NOW)


@given(
    example=st.sampled_from(PATH_MATCHES),
    dirs=_DIRS,
    absolute=st.booleans(),
    windows=st.booleans(),
)
def test_every_default_path_pattern_yields_a_call_under_any_folder(
    example: tuple[str, str], dirs: list[str], absolute: bool, windows: bool
) -> None:
    path, slug = example
    full = "/".join([*dirs, path.removeprefix("./")])
    if absolute:
        full = "/" + full.lstrip("/")
    if windows:
        full = full.replace("/", "\\")
    op = Operation(paths=(full,))
    call = RiskTrigger().evaluate(before(op), FACTS, NOW)
    assert call is not None
    assert slug in slugs(op)


@given(
    command=st.one_of(st.none(), st.text(max_size=200)),
    paths=st.lists(st.text(max_size=40), max_size=5),
    kind=st.one_of(st.none(), st.text(max_size=20)),
    files=st.one_of(st.none(), st.integers(min_value=0, max_value=500)),
    deletes=st.booleans(),
)
def test_any_operation_is_classified_and_a_call_follows_exactly_when_risky(
    command: str | None, paths: list[str], kind: str | None, files: int | None, deletes: bool
) -> None:
    op = Operation(command=command, paths=paths, kind=kind, files_count=files, deletes=deletes)
    matches = classify(op)
    call = RiskTrigger().evaluate(before(op), FACTS, NOW)
    assert (call is not None) == bool(matches)
    if deletes or op.touched > 50:
        assert call is not None
    if call is not None:
        assert is_valid(call.key)
        assert call.trigger == f"risk:{matches[0].category.value}"
