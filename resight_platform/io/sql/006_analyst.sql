-- The analyst role (issue 6) reads gold and marts and nothing else. Its name and password are
-- configuration (RESIGHT_ANALYST_ROLE, RESIGHT_ANALYST_PASSWORD), so the role and its grants are
-- made by resight_platform.io.roles.ensure_analyst_role after these scripts. What is here holds
-- for every role that is not the owner: nobody creates objects in the public schema (the default
-- since PostgreSQL 15; older servers and clusters upgraded from them still allow it). On a server
-- where the platform user does not own the schema this is a warning, not an error, and
-- ensure_analyst_role reports it. Idempotent.

do $$
begin
    if exists (select 1 from pg_namespace where nspname = 'public') then
        revoke create on schema public from public;
    end if;
end
$$;
