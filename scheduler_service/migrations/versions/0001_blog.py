"""The companion blueprint's tables: blog users, posts, tags, and the tags of each post.

Revision ID: 0001_blog
Revises:
Create Date: 2026-11-25 12:00:00

Written for SQLite, PostgreSQL and MariaDB alike: every VARCHAR has a length, every
constraint and index a name. On MariaDB the tables are utf8mb4 with a binary collation (names
compare case-sensitively, as on the other databases), timestamps keep microseconds and the
content is a MEDIUMTEXT (a TEXT holds only 64 KiB there).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision = "0001_blog"
down_revision = None
branch_labels = None
depends_on = None

MARIADB = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}
TIMESTAMP = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
CONTENT = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


def upgrade():
    op.create_table(
        "blog_users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("age", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_blog_users"),
        sa.UniqueConstraint("name", name="uq_blog_users_name"),
        sa.CheckConstraint("age >= 0 AND age <= 150", name="ck_blog_users_age"),
        **MARIADB,
    )
    op.create_table(
        "blog_tags",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_blog_tags"),
        sa.UniqueConstraint("name", name="uq_blog_tags_name"),
        **MARIADB,
    )
    op.create_table(
        "blog_posts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("content", CONTENT, nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_blog_posts"),
        sa.ForeignKeyConstraint(["author_id"], ["blog_users.id"], name="fk_blog_posts_author_id"),
        **MARIADB,
    )
    op.create_index("ix_blog_posts_author_id", "blog_posts", ["author_id"])
    op.create_table(
        "blog_post_tags",
        sa.Column("blog_id", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("blog_id", "tag_id", name="pk_blog_post_tags"),
        sa.ForeignKeyConstraint(
            ["blog_id"], ["blog_posts.id"], name="fk_blog_post_tags_blog_id", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["blog_tags.id"], name="fk_blog_post_tags_tag_id", ondelete="CASCADE"
        ),
        **MARIADB,
    )
    op.create_index("ix_blog_post_tags_tag_id", "blog_post_tags", ["tag_id"])


def downgrade():
    # The indexes go with their tables (MariaDB refuses to drop one a foreign key uses).
    op.drop_table("blog_post_tags")
    op.drop_table("blog_posts")
    op.drop_table("blog_tags")
    op.drop_table("blog_users")
